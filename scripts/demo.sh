#!/usr/bin/env bash
# `make demo`: pyxis-cache on a sample image, in a temporary cache root that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/pyxis-cache-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
cli=(bin/pyxis-cache)
config=(--no-plugstack --set "container_cache_data_path=$work/cache")

echo "== a sample image: busybox and an os-release, packed with mksquashfs"
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/usr/share/demo"
cp /bin/busybox "$work/rootfs/bin/busybox"
for tool in sh ls cat echo id; do ln -s busybox "$work/rootfs/bin/$tool"; done
printf 'NAME="pyxis-cache demo"\nID=pyxis-demo\n' >"$work/rootfs/etc/os-release"
head -c 32M /dev/urandom >"$work/rootfs/usr/share/demo/payload.bin"
mksquashfs "$work/rootfs" "$work/demo.sqfs" -quiet -noappend -no-progress >/dev/null
ls -l "$work/demo.sqfs"

if [ "$(id -u)" = 0 ]; then
  echo "== prepare the user's directory (root, as the SPANK stub does before each step)"
  "${cli[@]}" prepare --uid 0 --gid 0 "${config[@]}"
fi

echo "== cold: the first step on this node unpacks the image"
"${cli[@]}" reuse --image "$work/demo.sqfs" --json "${config[@]}"
echo "== warm: every later step reuses the rootfs"
start=$(date +%s%N)
"${cli[@]}" reuse --image "$work/demo.sqfs" --json "${config[@]}"
echo "   (whole command, Deno start-up included: $((($(date +%s%N) - start) / 1000000)) ms)"

echo "== status"
"${cli[@]}" status "${config[@]}"
echo "== gc with the watermarks as configured: nothing to do"
"${cli[@]}" gc "${config[@]}"
echo "== gc with watermarks forced below the current use: evicts the entry"
"${cli[@]}" gc "${config[@]}" --set container_cache_gc_high=2 --set container_cache_gc_low=1
"${cli[@]}" status "${config[@]}"
echo "== done: the temporary cache $work is removed"
