#!/usr/bin/env bash
# What `enroot start` costs with the stub's configuration, counted in processes (load-independent)
# and CPU time (the whole tree's: perf stat's task-clock when perf is installed, else /usr/bin/time's
# user+sys in 10 ms ticks), for a busybox rootfs, as an unprivileged user:
#   before    as runtime.c started it before issue 22's changes: --conf (mounts() with the working
#             directory, rc()), enroot's paths in a step directory and the rootfs under a cache root,
#             both on the root filesystem at the depth of /var/lib/pyxis-cache/<uid>/... (enroot walks
#             each path up to its mount point, one `mountpoint` process per level)
#   seed      the seed PR's, as bench/srun.sh's "seed": no --conf, the same paths
#   stub      as runtime.c started it before the stub did enroot's front end: no --conf, the mounts in
#             ENROOT_CONFIG_PATH/mounts.d, no --rc (the rootfs has no /etc/rc), ENROOT_RUNTIME_PATH and the
#             rootfs each a mount point (a tmpfs, and a bind mount: what the step's mounter makes, mounter.c)
#   stubfe    the same, with enroot's front end done by the stub (enroot_fe.c, run by
#             spank-stub/tests/enroot_fe_check as the runtime's child runs it: runtime.c now)
#   bash bench/enroot-start.sh [ROUNDS]    (root; enroot as bench/srun.sh finds it)
set -euo pipefail
rounds=${1:-9}
uid=${BENCH_UID:-65534}
gid=$(id -g "$uid" 2>/dev/null || echo "$uid")
((EUID == 0)) || { echo "bench/enroot-start.sh: must run as root" >&2; exit 2; }
if ! command -v enroot >/dev/null; then
  PATH=${PYXIS_CACHE_TEST_CACHE:-/var/cache/pyxis-cache-test}/enroot-4.1.2/bin:$PATH
  command -v enroot >/dev/null || { echo "skipped: enroot not found (bash tests/e2e/run.sh builds it)"; exit 0; }
fi
for tool in strace setpriv /usr/bin/time /bin/busybox; do
  command -v "$tool" >/dev/null || { echo "skipped: $tool not found"; exit 0; }
done
enroot_dir=$(dirname "$(command -v enroot)")
fe_check=$PWD/spank-stub/tests/enroot_fe_check
make -s -C spank-stub tests/enroot_fe_check >/dev/null || { echo "skipped: spank-stub/tests/enroot_fe_check did not build"; exit 0; }

# On the root filesystem (not /tmp, which may be a tmpfs of its own): the walks are as deep as a node's.
top=$(mktemp -d /var/tmp/pxc-enroot-start.XXXXXX)
cleanup() {
  umount "$top/mnt/rootfs" "$top/mnt/run" 2>/dev/null || true
  rm -rf "$top"
}
trap cleanup EXIT
chmod 755 "$top"
deep=$top/lib/pyxis-cache/$uid
mkdir -p "$deep/entry/bin" "$deep/entry/tmp" "$deep/entry/etc" "$top/work" "$top/home" "$top/mnt/run" "$top/mnt/rootfs"
cp /bin/busybox "$deep/entry/bin/"
ln -s busybox "$deep/entry/bin/sh"
ln -s busybox "$deep/entry/bin/true"
cat >"$top/start.conf" <<EOF
mounts() {
	echo '$top/work $top/work x-create=dir,rbind,rw,nosuid'
	:
}
rc() {
	exec "\$@"
}
EOF
chown -R "$uid:$gid" "$top/lib" "$top/work" "$top/home" "$top/start.conf" "$top/mnt"
mount -t tmpfs -o "mode=700,uid=$uid,gid=$gid" pxc-enroot-run "$top/mnt/run"
mount --bind "$deep/entry" "$top/mnt/rootfs"

start() { # start VARIANT TAG [CMD...]: one enroot start as the user (CMD wraps it)
  local variant=$1 tag=$2 paths data runtime front=(enroot start)
  shift 2
  paths=$deep/.pyxis_cache_step_1.0.$tag/enroot data=$deep name=entry runtime=$paths/runtime
  case $variant in
    before) front=(enroot start --conf "$top/start.conf") ;;
    seed) ;;
    stub) data=$top/mnt name=rootfs runtime=$top/mnt/run ;;
    stubfe) data=$top/mnt name=rootfs runtime=$top/mnt/run front=("$fe_check" "$enroot_dir/enroot" "") ;;
  esac
  setpriv --reuid="$uid" --regid="$gid" --clear-groups mkdir -p "$paths"
  if [[ $variant == stub* ]]; then
    setpriv --reuid="$uid" --regid="$gid" --clear-groups mkdir -p "$paths/config/mounts.d"
    echo "$top/work $top/work x-create=dir,rbind,rw,nosuid" |
      setpriv --reuid="$uid" --regid="$gid" --clear-groups tee "$paths/config/mounts.d/50-pyxis-cache.fstab" >/dev/null
  fi
  (cd "$top/work" && "$@" setpriv --reuid="$uid" --regid="$gid" --clear-groups env -i \
    "PATH=$enroot_dir:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "HOME=$top/home" \
    "ENROOT_DATA_PATH=$data" "ENROOT_RUNTIME_PATH=$runtime" "ENROOT_CACHE_PATH=$paths/cache" \
    "ENROOT_CONFIG_PATH=$paths/config" "ENROOT_TEMP_PATH=$paths/temp" ENROOT_ROOTFS_WRITABLE=n \
    ENROOT_MOUNT_HOME=y ENROOT_REMAP_ROOT=n "${front[@]}" "$name" true >/dev/null)
  rm -rf "$paths"
}

variants=(before seed stub stubfe)
echo "| variant | processes | of which \`mountpoint\` | CPU ms (median of $rounds) |"
echo "|---|---|---|---|"
# One unmeasured start first: the first writes enroot's files into the rootfs (docs/srun.md).
start before warmup
for variant in "${variants[@]}"; do
  start "$variant" "s$variant" strace -f -qq -e trace=execve -e signal=none -o "$top/trace.$variant"
  # Successful execs only (a PATH lookup tries several directories).
  execs=$(grep -c 'execve(.*= 0$' "$top/trace.$variant")
  walks=$(grep -c 'execve("[^"]*/mountpoint".*= 0$' "$top/trace.$variant")
  : >"$top/cpu.$variant"
  echo "$variant $execs $walks" >>"$top/counts"
done
for ((i = 0; i < rounds; i++)); do
  for variant in "${variants[@]}"; do
    if command -v perf >/dev/null; then
      start "$variant" "c$i$variant" perf stat -x, -e task-clock --append -o "$top/cpu.$variant"
    else
      start "$variant" "c$i$variant" /usr/bin/time -f '%U %S' -a -o "$top/cpu.$variant"
    fi
  done
done
while read -r variant execs walks; do
  # perf's "<ms>,msec,task-clock,..." lines, or time's "<user s> <sys s>".
  cpu=$(awk -F'[ ,]' '/task-clock/ { print $1; next } /^[0-9.]+ [0-9.]+$/ { print ($1 + $2) * 1000 }' "$top/cpu.$variant" |
    sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] }')
  echo "| $variant | $execs | $walks | $cpu |"
done <"$top/counts"
