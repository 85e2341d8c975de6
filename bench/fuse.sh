#!/usr/bin/env bash
# The FUSE mount's file-access and publish figures (docs/performance.md), as root, side by side in one run:
#   bash bench/fuse.sh IMAGE [REPS]      (FUSE_ONLY=F1 or F2: one figure only)
# F1  a job's own file access on a cold step's FUSE mount vs on the entry that
#     replaces it (a metadata walk: find + lstat of every name; a full read of
#     every file). cold: page cache dropped, a fresh mount (what a cold step's
#     first walk pays); warm: the image or entry in the page cache, and on the
#     mount the second walk of one mount. The entry on tmpfs and on BENCH_DIR's disk.
# F2  time until the entry is published by the background creator (nice 19, idle
#     I/O class, as the stub starts it) vs a plain unsquashfs of the image, on an
#     idle node and with one of the two CPUs busy (a job running beside it).
# Everything runs as uid 65534, as the stub runs it for a job user. Prints one
# line per measure: "<figure> <what> <ms> ..." (median of REPS, then each run).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
image=$(realpath "$1")
reps=${2:-3}
user=65534
bench_dir=${BENCH_DIR:-/var/tmp/pyxis-cache-bench}

((EUID == 0)) || { echo "bench/fuse.sh: must run as root" >&2; exit 2; }
command -v squashfuse_ll >/dev/null || { echo "skipped: squashfuse_ll not installed"; exit 0; }
make -s -C "$repo/spank-stub" test-programs >&2

work=$(mktemp -d "$bench_dir/fuse.XXXXXX")
chmod 755 "$work"
mkdir "$work/tmpfs"
mount -t tmpfs -o size=4g,mode=755 pxc-bench-fuse "$work/tmpfs"
cleanup() {
  umount "$work/tmpfs" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
for fs in tmpfs disk; do
  dir=$work/$fs
  [[ $fs == disk ]] && dir=$work/diskfs && mkdir -p "$dir"
  mkdir -p "$dir/base/$user"
  chown "$user:$user" "$dir/base/$user"
  chmod 700 "$dir/base/$user"
done
name=pyxis_cache_u${user}_00000000000000000000

as_user() { setpriv --reuid="$user" --regid="$user" --clear-groups "$@"; }
drop_caches() { sync && echo 3 >/proc/sys/vm/drop_caches; }
median() { tr ' ' '\n' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# The walks, timed inside the namespace (as the user), on ROOT.
walk_script='start=$(date +%s%N); case $1 in
  stat) find "$2" -printf "%m %U %s\n" >/dev/null ;;
  read) find "$2" -type f -print0 | xargs -0 cat >/dev/null ;;
esac; echo "ms $((($(date +%s%N) - start) / 1000000))"'

on_mount() { # on_mount WALK PASSES: ms of the last of PASSES walks on one fresh mount of the image
  "$repo/spank-stub/tests/fuse_mount" "$work/tmpfs/base/$user" "$name" "$user" "$user" "$image" \
    sh -c 'r=$(ls -d '"$work/tmpfs/base/$user"'/.pyxis_cache_mnt.*/root)
      for _ in $(seq "$2"); do sh -c "$0" - "$1" "$r"; done' "$walk_script" "$1" "$2" |
    awk '$1 == "ms" { ms = $2 } END { print ms }'
}
on_entry() { # on_entry FS WALK
  as_user sh -c "$walk_script" - "$2" "$3" | awk '$1 == "ms" { print $2 }'
}

entry_tmpfs=$work/tmpfs/base/$user/entry
entry_disk=$work/diskfs/base/$user/entry
as_user unsquashfs -no-progress -quiet -d "$entry_tmpfs" "$image" >/dev/null
as_user unsquashfs -no-progress -quiet -d "$entry_disk" "$image" >/dev/null

for walk in stat read; do
  [[ ${FUSE_ONLY:-F1} == *F1* ]] || break
  for cache in warm cold; do
    declare -A runs=()
    for side in mount entry-tmpfs entry-disk; do runs[$side]=""; done
    for ((i = 0; i < reps; i++)); do
      for side in mount entry-tmpfs entry-disk; do
        # warm: the image (or the entry) in the page cache, and on the mount a second walk
        # (the first fills FUSE's and the overlay's caches); cold: caches dropped, a fresh mount.
        if [[ $cache == warm ]]; then
          case $side in entry-tmpfs) on_entry x "$walk" "$entry_tmpfs" >/dev/null ;; entry-disk) on_entry x "$walk" "$entry_disk" >/dev/null ;; esac
        else
          drop_caches
        fi
        case $side in
          mount) ms=$(on_mount "$walk" "$([[ $cache == warm ]] && echo 2 || echo 1)") ;;
          entry-tmpfs) ms=$(on_entry x "$walk" "$entry_tmpfs") ;;
          entry-disk) ms=$(on_entry x "$walk" "$entry_disk") ;;
        esac
        runs[$side]+="$ms "
      done
    done
    for side in mount entry-tmpfs entry-disk; do
      echo "F1 $walk-$cache $side $(echo "${runs[$side]}" | xargs | median) (${runs[$side]% })"
    done
  done
done

publish() { # publish LOAD: ms until the background creator has published
  local base=$work/diskfs/pub start end hogs=()
  rm -rf "$base"
  mkdir -p "$base"
  if [[ $1 == busy ]]; then
    (while :; do :; done) & hogs+=($!)
  fi
  start=$(date +%s%N)
  nice -n 19 ionice -c 3 "$repo/bin/pyxis-cache" reuse --image "$image" --unless-busy \
    --uid "$user" --gid "$user" --no-plugstack --set "container_cache_data_path=$base" >/dev/null
  end=$(date +%s%N)
  ((${#hogs[@]})) && kill "${hogs[@]}" && wait "${hogs[@]}" 2>/dev/null
  echo $(((end - start) / 1000000))
}
plain() {
  local dest=$work/diskfs/mine/plain start end hogs=()
  rm -rf "$dest"
  if [[ $1 == busy ]]; then
    (while :; do :; done) & hogs+=($!)
  fi
  start=$(date +%s%N)
  as_user unsquashfs -no-progress -quiet -d "$dest" "$image" >/dev/null
  end=$(date +%s%N)
  ((${#hogs[@]})) && kill "${hogs[@]}" && wait "${hogs[@]}" 2>/dev/null
  echo $(((end - start) / 1000000))
}
chmod 755 "$work/diskfs"
mkdir -p "$work/diskfs/mine"
chown "$user:$user" "$work/diskfs/mine"
for load in idle busy; do
  [[ ${FUSE_ONLY:-F2} == *F2* ]] || break
  a="" b=""
  for ((i = 0; i < reps; i++)); do
    if ((i % 2)); then a+="$(publish $load) "; b+="$(plain $load) "; else b+="$(plain $load) "; a+="$(publish $load) "; fi
  done
  echo "F2 publish-$load creator $(echo "$a" | xargs | median) (${a% })"
  echo "F2 publish-$load unsquashfs $(echo "$b" | xargs | median) (${b% })"
done
