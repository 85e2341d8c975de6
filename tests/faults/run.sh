#!/usr/bin/env bash
# The fault and security suite: drives bin/pyxis-cache on real filesystems (tmpfs,
# loop-mounted ext4), with real processes, locks, SIGKILLs and unprivileged users,
# and asserts that nothing is lost and no one gets in. Run as root:
#   bash tests/faults/run.sh [CASE-REGEX]
# Ends with "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export PC=$repo/bin/pyxis-cache
export PATH=$repo/.tools/node_modules/.bin:$PATH
# shellcheck source=tests/faults/lib.sh
source "$here/lib.sh"

if ((EUID != 0)); then
  echo "tests/faults/run.sh: must run as root (mounts, users, chattr)" >&2
  exit 2
fi
for tool in mksquashfs unsquashfs flock setpriv useradd mount mkfs.ext4 chattr jq sha256sum; do
  command -v "$tool" >/dev/null || { echo "tests/faults/run.sh: $tool not found (make bootstrap-test)" >&2; exit 2; }
done
only=${1:-}

WORK=$(mktemp -d /tmp/pyxis-faults.XXXXXX)
chmod 755 "$WORK"
export WORK
mounts=() bgpids=() slurm_pid=
cleanup() {
  set +e
  if [[ -n $slurm_pid ]] && kill -0 "$slurm_pid" 2>/dev/null; then
    kill -TERM -- "-$slurm_pid" 2>/dev/null
    wait "$slurm_pid" 2>/dev/null
  fi
  for p in "${bgpids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  for m in "${mounts[@]}"; do
    chattr -R -i "$m" 2>/dev/null
    umount -l "$m" 2>/dev/null
  done
  chattr -R -i "$WORK" 2>/dev/null
  if [[ -z ${FAULTS_KEEP:-} ]]; then rm -rf "$WORK"; else echo "# kept $WORK" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for u in pcfault1 pcfault2; do
  id "$u" >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin "$u" || exit 2
done
U1=$(id -u pcfault1) G1=$(id -g pcfault1) U2=$(id -u pcfault2) G2=$(id -g pcfault2)
export U1 G1 U2 G2
as1() { setpriv --reuid="$U1" --regid="$G1" --init-groups -- "$@"; }
as2() { setpriv --reuid="$U2" --regid="$G2" --init-groups -- "$@"; }

passed=0 failed=0 cases=0 faults=0 attacks=0 lost=0
problems=()
# A case records failures with `fail MSG`; `lost MSG` is a failure where data was lost
# or something outside the cache was touched.
fail() { problems+=("$*"); echo "    FAIL: $*" >&2; }
lose() { lost=$((lost + 1)); fail "LOST: $*"; }
check() { # check MSG CMD...: the command must succeed
  local msg=$1
  shift
  "$@" || fail "$msg"
}
run_case() {
  local name=$1
  [[ -n $only && ! $name =~ $only ]] && return 0
  cases=$((cases + 1))
  problems=()
  local t0=$SECONDS
  echo "# $name" >&2
  "case_$name"
  if ((${#problems[@]} == 0)); then
    passed=$((passed + 1))
    echo "ok $cases - $name ($((SECONDS - t0))s)"
  else
    failed=$((failed + 1))
    echo "not ok $cases - $name ($((SECONDS - t0))s): ${problems[0]}"
  fi
}

# A fresh cache root for a case, on its own filesystem: tmpfs SIZE, or ext4 with `ext4 SIZE [INODES]`.
newbase() {
  local kind=tmpfs size=$1 inodes=${2:-}
  if [[ $1 == ext4 ]]; then kind=ext4 size=$2 inodes=${3:-}; fi
  local mnt=$WORK/fs$((++nbases))
  mkdir -p "$mnt"
  if [[ $kind == tmpfs ]]; then
    mount -t tmpfs -o "size=$size,mode=755" pcfaults "$mnt" || exit 2
  else
    truncate -s "$size" "$WORK/ext4-$nbases.img"
    mkfs.ext4 -q -F ${inodes:+-N "$inodes"} -m 0 "$WORK/ext4-$nbases.img" || exit 2
    mount -o loop "$WORK/ext4-$nbases.img" "$mnt" || exit 2
    rmdir "$mnt/lost+found"
  fi
  mounts+=("$mnt")
  # Beside <base> on the same filesystem (so hardlinks into it are possible): a user's own file.
  OUTSIDE=$mnt/outside
  mkdir -p "$OUTSIDE" && echo "outside" >"$OUTSIDE/file" && chown -R "$U1:$G1" "$OUTSIDE"
  OUTSIDE_SUM=$(outside_sum)
  BASE=$mnt/base
  mkdir -p "$BASE"
  export BASE OUTSIDE
  pc prepare --uid "$U1" --gid "$G1" >/dev/null && pc prepare --uid "$U2" --gid "$G2" >/dev/null
}
nbases=0

# Images: mkimg NAME DIR [mksquashfs options]; its reference manifest in $IMG/NAME.manifest.
IMG=$WORK/img
mkdir -p "$IMG"
mkimg() {
  local name=$1 dir=$2
  shift 2
  mksquashfs "$dir" "$IMG/$name.sqfs" -noappend -quiet -no-progress "$@" >/dev/null || exit 2
  rm -rf "$WORK/ref.$name"
  unsquashfs -q -n -d "$WORK/ref.$name" "$IMG/$name.sqfs" >/dev/null 2>&1
  manifest "$WORK/ref.$name" >"$IMG/$name.manifest"
  rm -rf "$WORK/ref.$name"
}
# tree DIR FILES BYTES-OF-RANDOM: a small rootfs with FILES small files and one random blob.
tree() {
  mkdir -p "$1"/{bin,etc,usr/lib,var/empty}
  cp /bin/busybox "$1/bin/busybox"
  ln -sf busybox "$1/bin/sh"
  ln -sf /etc/hostname "$1/etc/abs-link"
  echo "$1" >"$1/etc/os-release"
  local i
  for ((i = 0; i < $2; i++)); do echo "file $i of $1" >"$1/usr/lib/f$i"; done
  ((${3:-0} > 0)) && head -c "$3" /dev/urandom >"$1/usr/lib/blob"
  chmod 555 "$1/var/empty"
  return 0
}
img_manifest() { cat "$IMG/$1.manifest"; }

# Entries whose tree is not their image's, for names given as NAME=IMAGE pairs in $names.
# complete_entries DIR IMAGE: every final-name entry in DIR must be IMAGE's tree.
complete_entries() {
  local dir=$1 image=$2 e ok=0
  for e in "$dir"/pyxis_cache_u*; do
    [[ -e $e ]] || continue
    if [[ $(manifest "$e") != "$(img_manifest "$image")" ]]; then
      lose "incomplete entry under its final name: $e"
      ok=1
    fi
  done
  return $ok
}
leftovers() { find "$BASE" -mindepth 2 -maxdepth 2 \( -name '.pyxis_cache_tmp.pyxis_cache_u*' -o -name '.pyxis_cache_trash.pyxis_cache_u*' \) -printf x | wc -c; }
temps() { find "$1" -mindepth 1 -maxdepth 1 -name '.pyxis_cache_tmp.*' -printf '%f\n' | LC_ALL=C sort; }
wait_unsquashfs() { # wait_unsquashfs [SECONDS]: no unsquashfs of a killed reuse still runs (a bound, not a wait)
  local i
  for ((i = 0; i < ${1:-20} * 50; i++)); do
    pgrep -f "unsquashfs .*$BASE/" >/dev/null || return 0
    sleep 0.02
  done
  return 1
}
# seconds CMD...: how long CMD takes on this machine, so that kills can be timed to land inside it.
seconds() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
scale() { awk -v t="$1" -v f="$2" 'BEGIN { printf "%.3f", t * f }'; }
randdelay() { awk -v a="$1" -v b="$2" -v s="$RANDOM" 'BEGIN { srand(s); printf "%.3f", a + rand() * (b - a) }'; }
one_line_error() { # one_line_error FILE WORDS-REGEX: stderr is one line naming the problem, no stack
  local lines
  lines=$(grep -c . "$1")
  [[ $lines == 1 ]] || { fail "expected one line on stderr, got $lines: $(head -c 300 "$1")"; return 1; }
  grep -qiE "$2" "$1" || { fail "stderr does not say '$2': $(cat "$1")"; return 1; }
}

# Sentinels outside every <base>: a root-owned tree and one owned by pcfault1 (for hardlinks).
SENT=$WORK/sentinel
mkdir -p "$SENT/root/dir/sub" "$SENT/user"
echo "keep me" >"$SENT/root/file"
echo "keep me too" >"$SENT/root/dir/sub/deep"
cp /bin/busybox "$SENT/root/dir/exe"
chmod 4755 "$SENT/root/dir/exe"
echo "user's own" >"$SENT/user/file"
chown -R "$U1:$G1" "$SENT/user"
chmod 755 "$SENT" "$SENT/user"
sentinel_sum() { (cd "$SENT" && find . -printf '%p %y %m %u %s %T@\n' | LC_ALL=C sort && find . -type f -exec sha256sum {} + | LC_ALL=C sort) | sha256sum; }
SENT_SUM=$(sentinel_sum)
outside_sum() { (cd "$OUTSIDE" && find . -printf '%p %y %m %u %s\n' && sha256sum file) | sha256sum; }
check_sentinel() {
  [[ $(sentinel_sum) == "$SENT_SUM" ]] || lose "the sentinel tree outside <base> changed ($1)"
  [[ $(outside_sum) == "$OUTSIDE_SUM" ]] || lose "the user's file beside <base> changed ($1)"
}


# The cases on Slurm (tests/faults/*.bats: srun32.bats, stub.bats...; cases named srun*, stub_*
# and fuse_*) run on the e2e harness's private Slurm, every file in one run of tests/e2e/run.sh
# (one boot), started first, in the
# background while the images are built and the other cases run; they are graded last, from its TAP. Under `make test`
# the e2e suite runs these files with its own (FAULTS_SLURM_TAP: that run's TAP, complete
# once FAULTS_SLURM_TAP.rc holds its exit status) and this suite grades them from it.
on_slurm() { [[ $1 == srun* || $1 == stub_* || $1 == fuse_* ]]; }
slurm_tap=${FAULTS_SLURM_TAP:-}
slurm_start_tap() {
  if [[ ! -f $repo/tests/e2e/run.sh ]] || ! command -v slurmctld >/dev/null; then
    slurm_tap=none
    return
  fi
  slurm_tap=$WORK/slurm.tap
  # A process group of its own, so that cleanup can stop bats and let run.sh stop its Slurm.
  setsid bash "$repo/tests/e2e/run.sh" "$here"/*.bats >"$slurm_tap" 2>"$WORK/slurm.err" &
  echo $! >"$slurm_tap.pid"
  slurm_pid=$!
}
# slurm_results: waits until the TAP is complete (the run has ended, however long it takes).
slurm_results() {
  [[ ! -e $slurm_tap.rc ]] || return 0
  local pid
  pid=$(cat "$slurm_tap.pid" 2>/dev/null) || true
  if [[ -z ${FAULTS_SLURM_TAP:-} && -n $pid ]]; then
    wait "$pid"
    echo $? >"$slurm_tap.rc"
    sed 's/^/    /' "$slurm_tap" "$WORK/slurm.err" >&2
    return
  fi
  # Another process runs it: until it records its status, or is gone without one.
  until [[ -e $slurm_tap.rc ]]; do
    [[ -z $pid ]] || kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  [[ -e $slurm_tap.rc ]] || echo 1 >"$slurm_tap.rc"
}
# slurm_incomplete: why the TAP cannot be trusted, if it cannot: a plan (1..N) not followed by
# N results, or a run that failed with no test failed (it stopped between or before passes).
slurm_incomplete() {
  awk '/^1\.\.[0-9]+$/ { if (plan != "" && n != plan) bad = 1; plan = substr($0, 4); n = 0; next }
       /^(not )?ok [0-9]+ / { n++ }
       END { exit (plan == "" || n != plan || bad) }' "$slurm_tap" ||
    { echo "the run on Slurm did not finish its plan: $(tail -3 "$slurm_tap" | tr '\n' ' ')"; return 0; }
  [[ $(cat "$slurm_tap.rc") != 0 ]] && ! grep -q '^not ok ' "$slurm_tap" &&
    echo "the run on Slurm exited $(cat "$slurm_tap.rc") with no test failed: $(tail -3 "$slurm_tap" | tr '\n' ' ')"
}
# slurm_case REGEX: the .bats test whose name matches ran and passed (every time: stub.bats
# runs once per runtime).
slurm_case() {
  if [[ $slurm_tap == none ]]; then
    echo "    SKIPPED: no Slurm harness (tests/e2e/run.sh) or no slurmctld here" >&2
    return 0
  fi
  slurm_results
  [[ -z ${FAULTS_SLURM_TAP:-} ]] || grep -E "^(not )?ok [0-9]+ $1" "$slurm_tap" | sed 's/^/    /' >&2
  local failed broken
  failed=$(grep -E "^not ok [0-9]+ $1" "$slurm_tap" | head -1)
  broken=$(slurm_incomplete)
  if [[ -n $broken ]]; then
    fail "$broken"
  elif [[ -n $failed ]]; then
    fail "$failed"
  elif ! grep -qE "^ok [0-9]+ $1" "$slurm_tap"; then
    fail "no test '$1' ran on Slurm: $(tail -3 "$slurm_tap" | tr '\n' ' ')"
  fi
}

for f in "$here"/cases/*.sh; do
  # shellcheck source=/dev/null
  source "$f"
done
# FAULT_CASES="a b" runs only those cases (for working on one); the ones on Slurm last.
later=()
for c in ${FAULT_CASES:-$CASES}; do
  on_slurm "$c" && [[ -z $slurm_tap && ( -z $only || $c =~ $only ) ]] && slurm_start_tap
done
echo "# building images in $WORK" >&2
# image NAME FILES BYTES-OF-RANDOM: tree and mkimg, three at a time (mksquashfs has threads of its
# own; making the tree, unsquashfs and the manifest have one each).
imaging=()
image() {
  local running
  # Only the image builders still running: wait -n on one already reaped says "no such job".
  while running=$(jobs -rp | grep -vx "${slurm_pid:-0}") && (($(wc -l <<<"$running") >= 3)); do
    # shellcheck disable=SC2086 # one pid per word
    wait -n $running 2>/dev/null
  done
  { (tree "$WORK/src/$1" "$2" "$3" && mkimg "$1" "$WORK/src/$1") || echo "$1" >>"$WORK/images-failed"; } &
  imaging+=($!)
}
image big 3000 $((24 << 20))
for i in 1 2 3 4 5 6; do image "many$i" 1500 0; done
for x in a b c d e; do image "ten$x" 5 $((8 << 20)); done
image thirty 5 $((26 << 20))
image huge 5 $((70 << 20))
image small 20 0
for i in $(seq 1 20); do image "load$i" 30 $((1400 << 10)); done
image inodes 600 0
wait "${imaging[@]}"
[[ ! -e $WORK/images-failed ]] || { echo "tests/faults/run.sh: could not build the images $(tr '\n' ' ' <"$WORK/images-failed")" >&2; exit 2; }
chmod -R a+rX "$IMG"
chmod 755 "$WORK"
for c in ${FAULT_CASES:-$CASES}; do
  if on_slurm "$c"; then later+=("$c"); else run_case "$c"; fi
done
for c in "${later[@]}"; do run_case "$c"; done

echo "# cases run: $cases; faults injected: $faults; attacks tried: $attacks; losses: $lost"
echo "$passed passed, $failed failed"
((failed == 0))
