#!/usr/bin/env bash
# `make demo`: what pyxis-cache is for, on this node. A private one-node Slurm with the plugin
# (tests/e2e/slurm.sh, as the e2e suite starts it), a sample image, and as an unprivileged user:
# a plain `srun true`, the same step in the image without the cache (it unpacks the image), then
# `srun --container-cache --container-image=IMG` cold and warm; then `status` and `gc`. Everything it
# starts or makes (munged, slurmctld, slurmd, the cache's tmpfs, the demo user, its temporary
# directory) is stopped or removed at the end, also on failure or Ctrl-C. Needs root and what
# `make bootstrap` installs (`make demo` does both). DEMO_USER=NAME: another user than pxc-demo (one
# that exists already is used and left in place).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() {
  echo "make demo: $*" >&2
  exit 1
}
((EUID == 0)) || die "must run as root (it starts a private slurmctld, slurmd and munged, and adds a user)"
for tool in slurmctld slurmd munged srun sinfo mksquashfs unsquashfs bwrap busybox useradd userdel runuser; do
  command -v "$tool" >/dev/null || die "$tool not found (make bootstrap installs it)"
done
[[ -f $repo/spank-stub/spank_pyxis_cache.so ]] || make -s -C "$repo/spank-stub"

export E2E_TMP E2E_PLUGIN=$repo/spank-stub/spank_pyxis_cache.so E2E_CLI=$repo/bin/pyxis-cache
E2E_TMP=$(mktemp -d /tmp/pyxis-cache-demo.XXXXXX)
chmod 755 "$E2E_TMP"
export E2E_BASE=$E2E_TMP/cache
# shellcheck source=tests/e2e/slurm.sh
source "$repo/tests/e2e/slurm.sh"

user=${DEMO_USER:-pxc-demo}
created_user= running=
cleanup() {
  local rc=$?
  set +e
  trap '' INT TERM HUP
  echo "== clean up: stop the private Slurm, remove the cache${created_user:+, the user $user} and $E2E_TMP"
  # What timed was running (an srun: a Ctrl-C also ended the daemons, it would wait for them).
  [[ -z $running ]] || kill "$running" 2>/dev/null
  slurm_stop
  local uid
  if [[ -n $created_user ]] && uid=$(id -u "$user" 2>/dev/null); then
    # The user's processes are the demo's: a background unpack still running after a failure or
    # Ctrl-C (a cold step's squashfuse_ll ends with its step). 10 s for them to end, then KILL.
    user_pids() { find /proc -mindepth 1 -maxdepth 1 -regex '/proc/[0-9]+' -user "$uid" -printf '%f\n'; }
    wait_for 10 eval '[[ -z $(user_pids) ]]' || kill -KILL $(user_pids) 2>/dev/null
    wait_for 10 eval '[[ -z $(user_pids) ]]'
  fi
  local point
  for point in "$E2E_BASE" "$E2E_TMP/src"; do
    if mountpoint -q "$point"; then
      wait_for 10 umount "$point" || echo "make demo: cannot unmount $point" >&2
    fi
  done
  if [[ -n $created_user ]] && id "$user" >/dev/null 2>&1; then
    userdel -r "$user" >/dev/null 2>&1 || echo "make demo: cannot remove user $user" >&2
  fi
  # Never through a mount that is still there (src is this checkout).
  if mountpoint -q "$E2E_BASE" || mountpoint -q "$E2E_TMP/src"; then
    echo "make demo: left $E2E_TMP behind (still mounted)" >&2
  else
    rm -rf --one-file-system "$E2E_TMP"
  fi
  ((rc == 0)) || echo "make demo: did not finish (exit status $rc)" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# as_user CMD...: CMD as the demo user in its home, with the private cluster's configuration.
as_user() {
  (cd "$home" && runuser -u "$user" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$home" USER="$user" \
    LOGNAME="$user" SLURM_CONF="$SLURM_CONF" "$@")
}

# timed VAR CMD...: run CMD, show its output indented (and keep it in $out); its wall time in seconds
# into VAR; its status returned.
timed() {
  local var=$1 start=${EPOCHREALTIME/./} rc=0
  shift
  # In the background, waited for: a Ctrl-C runs the trap at once, not once CMD has ended.
  "$@" >"$E2E_TMP/out" 2>&1 &
  running=$!
  wait "$running" || rc=$?
  running=
  out=$(<"$E2E_TMP/out")
  local us=$((${EPOCHREALTIME/./} - start))
  [[ -z $out ]] || sed 's/^/   | /' <<<"$out"
  printf -v "$var" '%d.%02d s' $((us / 1000000)) $((us % 1000000 / 10000))
  return "$rc"
}

# srun_timed VAR ARGS...: srun ARGS as the demo user, timed (VAR), once the steps before it have
# ended (a step's job keeps its CPU until the stub's exit ends: the next srun would queue).
srun_timed() {
  wait_for 30 eval '[[ -z $(squeue -h) ]]' || true
  timed "$1" as_user srun "${@:2}" || die "srun failed (exit status $?)"
}

echo "== a sample image: busybox, an os-release and 32 MiB of data, packed with mksquashfs"
root=$E2E_TMP/rootfs
mkdir -p "$root"/{bin,etc,tmp,proc,dev,home,root,usr/share/demo}
cp "$(command -v busybox)" "$root/bin/busybox"
for app in $("$root/bin/busybox" --list); do
  [[ $app == busybox ]] || ln -s busybox "$root/bin/$app"
done
printf 'NAME="pyxis-cache demo"\nPRETTY_NAME="pyxis-cache demo (busybox)"\nID=pxc-demo\n' >"$root/etc/os-release"
head -c 32M /dev/urandom >"$root/usr/share/demo/payload.bin"
mkdir "$E2E_TMP/images"
image=$E2E_TMP/images/demo.sqsh
mksquashfs "$root" "$image" -quiet -noappend -no-progress -all-root >/dev/null
chmod -R a+rX "$E2E_TMP/images"
rm -rf "$root"
echo "   $image, $(($(stat -c %s "$image") / 1048576)) MiB"

echo "== a private one-node Slurm (munged, slurmctld, slurmd) with the plugin, and a demo user"
# The cache root: a tmpfs of its own, so that its use (gc's watermarks) is the cache's alone.
mkdir "$E2E_BASE"
mount -t tmpfs -o size=128m,mode=755 pxc-demo "$E2E_BASE"
if id "$user" >/dev/null 2>&1; then
  echo "   (the user $user exists already: used, and left in place)"
  home=$E2E_TMP/work
  mkdir "$home"
  chown "$user:" "$home"
else
  home=$E2E_TMP/home
  created_user=y # before useradd: a Ctrl-C while it runs must not leave the user behind
  useradd --home-dir "$home" --create-home --shell /bin/sh "$user"
fi
# The plugin is loaded and the command run as the user (srun, slurmstepd's children): a checkout in
# root's home (0700) is out of their reach. Then it is bound, read-only, where they can reach it.
if ! runuser -u "$user" -- test -r "$E2E_PLUGIN" -a -x "$E2E_CLI" -a -r "$repo/cmd/main.ts"; then
  mkdir "$E2E_TMP/src"
  mount --bind -o ro "$repo" "$E2E_TMP/src"
  E2E_PLUGIN=$E2E_TMP/src/spank-stub/spank_pyxis_cache.so E2E_CLI=$E2E_TMP/src/bin/pyxis-cache
  echo "   ($repo is out of $user's reach: bound read-only at $E2E_TMP/src)"
fi
# In a session of its own, so that a Ctrl-C reaches the demo, which stops the daemons in order,
# and not the daemons themselves (an srun of a step would then wait for a controller that is
# gone). slurm_stop stops them from any process, by the pids slurm_start recorded.
setsid -w bash -c 'source "$1" && slurm_start' demo "$repo/tests/e2e/slurm.sh" </dev/null
export SLURM_CONF=$E2E_TMP/slurm.conf
echo "   plugstack.conf: $(sed 's/ *$//' "$E2E_TMP/plugstack.conf")"
echo "   user: $(id "$user")"

# What the task prints: its os-release, who it is, whether / is writable, and what / is.
task='. /etc/os-release; echo "os-release: $PRETTY_NAME"; echo "id: $(id)"
if touch /probe 2>/dev/null; then echo "/: writable"; else echo "/: read-only"; fi
echo "file system of /: $(awk "\$5 == \"/\" { for (i = 7; \$i != \"-\"; i++); print \$(i + 1) }" /proc/self/mountinfo | tail -1)"'

echo "== srun true: a plain step, no container"
srun_timed plain true

echo "== srun --container-image=IMG: without the cache, every step unpacks the image into a directory of its own"
srun_timed nocache --container-image="$image" true

echo "== srun --container-cache --container-image=IMG, cold: the first step of this image on the node"
srun_timed cold --container-cache --container-image="$image" sh -c "$task"
if [[ $out == *"file system of /: overlay"* ]]; then
  echo "   (it started at once from a FUSE mount of the image, while the cache's entry was unpacked beside it)"
  entry=$E2E_BASE/$(id -u "$user")/$("$E2E_CLI" key --image "$image" --uid "$(id -u "$user")")
  timed published wait_for 120 test -d "$entry" || die "the image's entry was not published in 120 s: $entry"
  echo "== the background unpack published the entry, $published after that step ended"
else
  echo "   (no FUSE mount on this node (no /dev/fuse, squashfuse_ll or user namespaces, or container_cache_fuse=no):"
  echo "   the step waited for the cache's entry to be unpacked)"
fi

echo "== srun --container-cache --container-image=IMG, warm: every later step, from the cached entry"
srun_timed warm --container-cache --container-image="$image" sh -c "$task"

echo "== times as $user, whole srun (a small image: the unpack grows with the image, a warm step does not)"
printf '   %-54s %s\n' \
  "srun true" "$plain" \
  "srun --container-image=IMG  (no cache: unpacks)" "$nocache" \
  "srun --container-cache --container-image=IMG  (cold)" "$cold" \
  "srun --container-cache --container-image=IMG  (warm)" "$warm"

# cli ARGS...: bin/pyxis-cache as root, with the demo's cache root.
cli() { "$E2E_CLI" "$@" --no-plugstack --set "container_cache_data_path=$E2E_BASE"; }
echo "== pyxis-cache status"
cli status
echo "== pyxis-cache gc, with the watermarks as configured: nothing to do"
cli gc
echo "== pyxis-cache gc, with the watermarks forced below the current use: evicts the entry no step uses"
cli gc --set container_cache_gc_high=2 --set container_cache_gc_low=1
cli status
