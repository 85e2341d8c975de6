#!/usr/bin/env bash
# `make install` / `make uninstall` for everything but the SPANK stub (spank-stub/Makefile
# installs that). Installs the code once under $PKGLIBDIR and links $BINDIR/pyxis-cache to
# the launcher there: the installed command is bin/pyxis-cache itself, with the same
# production permission flags, not a copy that can drift. Every path installed is listed
# in $PKGLIBDIR/installed-files, and uninstall removes exactly those.
#
#   scripts/install.sh install|uninstall
#   env: DESTDIR PREFIX BINDIR PKGLIBDIR MANDIR DOCDIR SYSTEMDUNITDIR PLUGINDIR DENO INSTALL_DENO
set -euo pipefail
cd "$(dirname "$0")/.."

: "${PREFIX:=/usr/local}" "${DESTDIR:=}"
: "${BINDIR:=$PREFIX/bin}" "${PKGLIBDIR:=$PREFIX/lib/pyxis-cache}" "${MANDIR:=$PREFIX/share/man}"
: "${DOCDIR:=$PREFIX/share/doc/pyxis-cache}" "${SYSTEMDUNITDIR:=$PREFIX/lib/systemd/system}"
: "${PLUGINDIR:=$PREFIX/lib/slurm}" "${INSTALL_DENO:=0}" "${DENO:=.tools/node_modules/deno/deno}"
manifest=$PKGLIBDIR/installed-files

installed=()
put() { # put MODE SOURCE DEST: install one file (DEST without DESTDIR)
  install -D -m "$1" "$2" "$DESTDIR$3"
  installed+=("$3")
}
put_edited() { # put_edited MODE SOURCE DEST: with the paths of this installation
  local tmp
  tmp=$(mktemp)
  sed -e "s|/usr/local/bin/pyxis-cache|$BINDIR/pyxis-cache|g" \
    -e "s|/usr/local/lib/slurm/|$PLUGINDIR/|g" "$2" >"$tmp"
  put "$1" "$tmp" "$3"
  rm -f "$tmp"
}

do_install() {
  if [[ -e $DESTDIR$manifest ]]; then
    echo "install: $DESTDIR$PKGLIBDIR is already installed: run 'make uninstall' first" >&2
    exit 1
  fi
  local f
  for f in mod.ts cmd/*.ts lib/*.ts lib/*/*.ts; do
    [[ $f == *_test.ts ]] || put 644 "$f" "$PKGLIBDIR/$f"
  done
  put 755 bin/pyxis-cache "$PKGLIBDIR/bin/pyxis-cache"
  if [[ $INSTALL_DENO == 1 ]]; then
    [[ -x $DENO ]] || { echo "install: $DENO: no Deno to install (run 'make bootstrap')" >&2; exit 1; }
    put 755 "$DENO" "$PKGLIBDIR/deno"
  fi
  # The transpiled code for every caller (bin/pyxis-cache's DENO_DIR); its cache keys are the
  # code's final paths, so only an installation in place fills it. uninstall removes it whole.
  if [[ -z $DESTDIR ]]; then
    local deno=$DENO
    [[ $INSTALL_DENO == 1 ]] && deno=$PKGLIBDIR/deno
    [[ -x $deno ]] || deno=$(command -v deno || true)
    if [[ -n $deno ]]; then
      DENO_DIR=$PKGLIBDIR/.deno-dir "$deno" cache --quiet --no-config --no-lock "$PKGLIBDIR/cmd/main.ts"
      chmod -R a+rX "$PKGLIBDIR/.deno-dir"
    else
      echo "install: no deno yet: each user's first call transpiles into their own ~/.cache/deno" >&2
    fi
  fi
  install -d -m 755 "$DESTDIR$BINDIR"
  ln -sr "$DESTDIR$PKGLIBDIR/bin/pyxis-cache" "$DESTDIR$BINDIR/pyxis-cache"
  installed+=("$BINDIR/pyxis-cache")
  put 644 docs/pyxis-cache.1 "$MANDIR/man1/pyxis-cache.1"
  put_edited 644 contrib/systemd/pyxis-cache-gc.service "$SYSTEMDUNITDIR/pyxis-cache-gc.service"
  put 644 contrib/systemd/pyxis-cache-gc.timer "$SYSTEMDUNITDIR/pyxis-cache-gc.timer"
  put_edited 644 contrib/plugstack.conf.d/pyxis-cache.conf "$DOCDIR/examples/plugstack.conf.d/pyxis-cache.conf"
  for f in README.md docs/operations.md; do
    [[ -f $f ]] && put 644 "$f" "$DOCDIR/${f#docs/}"
  done
  installed+=("$manifest")
  printf '%s\n' "${installed[@]}" >"$DESTDIR$manifest"
  chmod 644 "$DESTDIR$manifest"
  echo "install: $((${#installed[@]})) files under $DESTDIR$PREFIX (list: $manifest)"
}

do_uninstall() {
  if [[ ! -f $DESTDIR$manifest ]]; then
    echo "uninstall: $DESTDIR$manifest: nothing installed there" >&2
    return 0
  fi
  local path dirs=()
  mapfile -t paths <"$DESTDIR$manifest"
  rm -rf -- "$DESTDIR$PKGLIBDIR/.deno-dir"
  for path in "${paths[@]}"; do
    case $path in /*) ;; *) echo "uninstall: skipping odd manifest line: $path" >&2; continue ;; esac
    rm -f -- "$DESTDIR$path"
    [[ $path == "$PKGLIBDIR"/* || $path == "$DOCDIR"/* ]] && dirs+=("$(dirname "$path")")
  done
  # Our own directories, deepest first, when nothing else is left in them.
  while read -r path; do
    while [[ $path == "$PKGLIBDIR"* || $path == "$DOCDIR"* ]]; do
      rmdir -- "$DESTDIR$path" 2>/dev/null || break
      path=$(dirname "$path")
    done
  done < <(printf '%s\n' "${dirs[@]}" | sort -ru)
  echo "uninstall: removed ${#paths[@]} files from $DESTDIR$PREFIX"
}

case ${1:-} in
  install) do_install ;;
  uninstall) do_uninstall ;;
  *) echo "usage: $0 install|uninstall" >&2; exit 2 ;;
esac
