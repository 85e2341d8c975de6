#!/usr/bin/env bash
# End-to-end tests of spank_pyxis_cache.so + bin/pyxis-cache on a private
# single-node Slurm. Run as root (CI runs it on a fresh clone after
# `make bootstrap`): bash tests/e2e/run.sh [bats options, e.g. --filter REGEX] [FILE.bats...]
# Without FILEs, every tests/e2e/*.bats; with them, those only (tests/faults/run.sh
# gives its srun32.bats and stub.bats; `make test` gives both sets: one Slurm for all).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

if ((EUID != 0)); then
  echo "tests/e2e/run.sh: must run as root (it starts slurmctld, slurmd and munged)" >&2
  exit 2
fi
for tool in slurmctld slurmd munged srun sinfo mksquashfs unsquashfs bwrap bats busybox useradd runuser; do
  command -v "$tool" >/dev/null || { echo "tests/e2e/run.sh: $tool not found (make bootstrap)" >&2; exit 2; }
done

# The .bats files among the arguments (any, e.g. tests/faults/*.bats) run, else ours; the rest are bats options.
options=() files=()
for arg; do
  if [[ $arg == *.bats && -f $arg ]]; then files+=("$(cd "$(dirname "$arg")" && pwd)/${arg##*/}"); else options+=("$arg"); fi
done
((${#files[@]})) || files=("$here"/*.bats)

make -s -C "$repo/spank-stub" all test-programs

# enroot for the enroot runtime's cases (tests/lib/enroot.sh: installed, or built once
# into a cache), else none: those cases are skipped, loudly, unless
# E2E_REQUIRE_ENROOT=1 (CI), which makes that an error.
# shellcheck source=tests/lib/enroot.sh
source "$repo/tests/lib/enroot.sh"
E2E_ENROOT=$(test_enroot || true)
if [[ -z $E2E_ENROOT ]]; then
  echo "# tests/e2e/run.sh: SKIPPING the enroot runtime's cases: enroot is not installed and ../shared/third_party/enroot/build.sh is missing or failed" >&2
  [[ -z ${E2E_REQUIRE_ENROOT:-} ]] || exit 2
else
  # slurmd (and so slurmstepd) finds enroot in its PATH, as with pyxis.
  PATH=$(dirname "$E2E_ENROOT"):$PATH
fi
export E2E_ENROOT

export E2E_TMP
E2E_TMP=$(mktemp -d /tmp/pyxis-cache-e2e.XXXXXX)
chmod 755 "$E2E_TMP"
export E2E_PLUGIN=$repo/spank-stub/spank_pyxis_cache.so
export E2E_CLI=$repo/bin/pyxis-cache
export E2E_BASE=$E2E_TMP/base
export E2E_REPO=$repo

# shellcheck source=tests/e2e/slurm.sh
source "$here/slurm.sh"

created_users=()
cleanup() {
  set +e
  slurm_stop
  mountpoint -q "$E2E_BASE" && umount "$E2E_BASE"
  # proctrack/cgroup's hierarchy (70-fuse.bats), once empty.
  find /sys/fs/cgroup/*/"slurm_$E2E_NODE" -depth -type d -exec rmdir {} + 2>/dev/null
  for u in "${created_users[@]}"; do userdel -r "$u" >/dev/null 2>&1; done
  if [[ -z ${E2E_KEEP:-} ]]; then rm -rf "$E2E_TMP"; else echo "# kept $E2E_TMP" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Two unprivileged users: the one who runs srun, and another one whose entry
# the collector may evict. E2E_USER/E2E_USER2 choose other names (two runs at
# once on one machine must not share users: each removes those it created).
E2E_USER=${E2E_USER:-pxc-e2e} E2E_USER2=${E2E_USER2:-pxc-e2e2}
for u in "$E2E_USER" "$E2E_USER2"; do
  if ! id "$u" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/sh "$u"
    created_users+=("$u")
  fi
done
export E2E_USER E2E_USER2

# The cache root: a small tmpfs, so that filesystem use (the GC watermarks)
# is known: one busybox entry is a few percent of it.
mkdir -p "$E2E_BASE"
if ! mount -t tmpfs -o size=64m,mode=755 pxc-e2e "$E2E_BASE"; then
  echo "# tests/e2e/run.sh: cannot mount a tmpfs; using a plain directory (GC cases assume its filesystem is over 2% used)" >&2
  chmod 755 "$E2E_BASE"
fi

# Test images: busybox-static rootfs, built with the real mksquashfs.
mkimage() { # mkimage NAME OS-RELEASE-LINE
  local root=$E2E_TMP/rootfs-$1
  mkdir -p "$root"/{bin,etc,tmp,proc,dev,home,root}
  cp "$(command -v busybox)" "$root/bin/busybox"
  local app
  for app in $("$root/bin/busybox" --list); do
    [[ $app == busybox ]] || ln -sf busybox "$root/bin/$app"
  done
  printf 'NAME="%s"\nPRETTY_NAME="%s"\nID=pxc-e2e\n' "$2" "$2" >"$root/etc/os-release"
  mksquashfs "$root" "$E2E_TMP/images/$1.sqsh" -noappend -quiet -all-root -no-progress >/dev/null
}
mkdir -p "$E2E_TMP/images"
mkimage alpha "pyxis-cache e2e alpha"
mkimage beta "pyxis-cache e2e beta"
chmod -R a+rX "$E2E_TMP/images"

slurm_start

# Every file runs with the bwrap runtime; a file that reads $E2E_RUNTIME
# (55-runtime.bats, tests/faults/stub.bats) runs again with enroot, with the
# enroot-only cases (*-enroot.bats).
bwrap_files=() enroot_files=()
for f in "${files[@]}"; do
  if [[ $f == *-enroot.bats ]]; then
    enroot_files+=("$f")
  else
    bwrap_files+=("$f")
    ! grep -q 'E2E_RUNTIME' "$f" || enroot_files+=("$f")
  fi
done
# E2E_RUNTIMES: the passes to run ("bwrap enroot" unless told; make test gives pyxis's files a lane per runtime).
runtimes=" ${E2E_RUNTIMES:-bwrap enroot} "
[[ $runtimes == *" bwrap "* ]] || bwrap_files=()
[[ $runtimes == *" enroot "* ]] || enroot_files=()
rc=0
if ((${#bwrap_files[@]})); then
  E2E_RUNTIME=bwrap bats --print-output-on-failure "${options[@]}" "${bwrap_files[@]}" || rc=$?
fi
if ((${#enroot_files[@]})); then
  E2E_RUNTIME=enroot bats --print-output-on-failure "${options[@]}" "${enroot_files[@]}" || rc=$?
fi
exit "$rc"
