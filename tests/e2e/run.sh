#!/usr/bin/env bash
# End-to-end tests of spank_pyxis_cache.so + bin/pyxis-cache on a private
# single-node Slurm. Run as root (CI runs it on a fresh clone after
# `make bootstrap`): bash tests/e2e/run.sh [bats options, e.g. --filter REGEX]
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

make -s -C "$repo/spank-stub" all test-programs

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
  for u in "${created_users[@]}"; do userdel -r "$u" >/dev/null 2>&1; done
  if [[ -z ${E2E_KEEP:-} ]]; then rm -rf "$E2E_TMP"; else echo "# kept $E2E_TMP" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Two unprivileged users: the one who runs srun, and another one whose entry
# the collector may evict.
for u in pxc-e2e pxc-e2e2; do
  if ! id "$u" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/sh "$u"
    created_users+=("$u")
  fi
done
export E2E_USER=pxc-e2e E2E_USER2=pxc-e2e2

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

rc=0
bats --print-output-on-failure "$@" "$here"/*.bats || rc=$?
exit "$rc"
