# shellcheck shell=bash

# shellcheck source=tests/e2e/slurm.sh
source "$BATS_TEST_DIRNAME/slurm.sh"
# Helpers for the e2e .bats files (run.sh sets up E2E_* and SLURM_CONF).

E2E_HOME=/home/$E2E_USER
E2E_WORK=$E2E_HOME/work
ALPHA=$E2E_TMP/images/alpha.sqsh
BETA=$E2E_TMP/images/beta.sqsh

# as USER CMD...: run CMD as USER in that user's work directory, with the
# private cluster's configuration.
as() {
  local user=$1
  shift
  local home
  home=$(getent passwd "$user" | cut -d: -f6)
  runuser -u "$user" -- mkdir -p "$home/work"
  (cd "$home/work" && without_queue_lines runuser -u "$user" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$home" \
    USER="$user" LOGNAME="$user" SLURM_CONF="$SLURM_CONF" ${E2E_ENV:-} "$@")
}

# without_queue_lines CMD...: CMD, with its exit status, less srun's two lines about waiting for the node
# ("job N queued and waiting for resources", "job N has been allocated resources"): a job that starts
# while the last one is still completing waits a moment, and says so on stderr. Its stderr goes
# through a pipe that is drained before this returns.
without_queue_lines() {
  local lines='^srun: job [0-9]+ (queued and waiting for resources|has been allocated resources)$'
  { "$@" 2>&1 1>&3 3>&- | { grep --line-buffered -Ev "$lines" >&2 || true; }; return "${PIPESTATUS[0]}"; } 3>&1
}

# srun_as_user ARGS...: srun as the test user (bats: use with `run`).
srun_as_user() { as "$E2E_USER" srun "$@"; }

user_uid() { id -u "${1:-$E2E_USER}"; }
user_gid() { id -g "${1:-$E2E_USER}"; }

# cli ARGS...: bin/pyxis-cache as root with the e2e configuration.
cli() {
  "$E2E_CLI" "$@" --no-plugstack --set "container_cache_data_path=$E2E_BASE"
}

node_state() { sinfo -h -n "$E2E_NODE" -o %T; }

# assert_node_idle: the step's failure did not drain or down the node (it may take a while to be idle
# again on a busy machine: waited for up to 30 s, not a budget).
assert_node_idle() {
  local state
  for _ in $(seq 300); do
    state=$(node_state)
    [[ $state == idle ]] && return 0
    [[ $state == *drain* || $state == *down* || $state == *fail* ]] && break
    sleep 0.1
  done
  echo "node state: $state" >&2
  return 1
}

# entry_name [IMAGE] [USER]: the name `pyxis-cache key` gives the image.
entry_name() {
  "$E2E_CLI" key --image "${1:-$ALPHA}" --uid "$(user_uid "${2:-$E2E_USER}")"
}

# wait_entry IMAGE [USER]: until the image's entry is published (60 s at most). A cold
# step starts from a FUSE mount and its entry is made in the background (docs/srun.md).
wait_entry() {
  local entry
  entry=$E2E_BASE/$(user_uid "${2:-$E2E_USER}")/$(entry_name "$1" "${2:-$E2E_USER}")
  for _ in $(seq 600); do
    [[ -d $entry ]] && return 0
    sleep 0.1
  done
  echo "no entry $entry" >&2
  return 1
}

# fresh_image NAME: a copy of alpha with a name (and an entry) of its own: a cold step.
fresh_image() {
  cp "$ALPHA" "$E2E_TMP/images/$1.sqsh"
  chmod 644 "$E2E_TMP/images/$1.sqsh"
  echo "$E2E_TMP/images/$1.sqsh"
}

# Where the task's / comes from: `entry` when the entry's in-use lock shows there (a warm
# step: its own layer over the entry), else the file system it is on: overlay from a cold
# step's FUSE mount (its layer over the mount), the cache's (tmpfs) without cache mode.
# shellcheck disable=SC2034
ROOT_FS='if [ -e /.pyxis_cache_lock ]; then echo entry; else awk "\$5 == \"/\" { print \$9 }" /proc/self/mountinfo | tail -1; fi'
# The file system the task's / is on: overlay for every cache-mode step (its own layer).
# shellcheck disable=SC2034
ROOT_FS_TYPE='awk "\$5 == \"/\" { print \$9 }" /proc/self/mountinfo | tail -1'

# warm_entry IMAGE [USER]: make the image's entry now (root's pre-warm), so that the
# next step finds it, as tests of entries in use want.
warm_entry() {
  local user=${2:-$E2E_USER}
  cli reuse --image "$1" --uid "$(user_uid "$user")" --gid "$(user_gid "$user")" >/dev/null
}

# entry_listing DIR: every name under DIR with its type, mode, size, link target and content's sha256.
entry_listing() {
  (cd "$1" && find . -printf '%p %y %m %s %l\n' | sort | while read -r path type rest; do
    if [[ $type == f ]]; then echo "$path $type $rest $(sha256sum <"$path" | cut -d' ' -f1)"; else echo "$path $type $rest"; fi
  done)
}

# runtime_available: the runtime this file runs with (E2E_RUNTIME, bwrap by default) can run here;
# skip_without_runtime: skip the case when it cannot (enroot neither installed nor built).
runtime_available() { [[ ${E2E_RUNTIME:-bwrap} == bwrap || -n ${E2E_ENROOT:-} ]]; }
skip_without_runtime() {
  runtime_available || skip "enroot is not installed and could not be built: the enroot runtime's cases are skipped"
}

# runtime_setup_file, runtime_teardown_file: a file's setup_file and teardown_file for the
# runtime it runs with: slurmd restarted with container_cache_runtime=E2E_RUNTIME (bwrap by
# default), then with the default plugstack again; nothing when the runtime cannot run here.
runtime_setup_file() {
  runtime_available || return 0
  slurmd_restart_with "$(plugstack_line "container_cache_runtime=${E2E_RUNTIME:-bwrap}")"
}
runtime_teardown_file() {
  runtime_available || return 0
  slurmd_restart_with
}

# entrypoint_image NAME [DIR|FILE=TEXT...] <ENTRYPOINT: $E2E_TMP/images/NAME-<runtime>.sqsh, alpha
# with the DIRs, the FILEs holding their TEXT, and an entrypoint as enroot imports one (/etc/rc runs /entrypoint.sh, read from stdin,
# around the command); its entry made, so that the steps are warm.
entrypoint_image() {
  local runtime=${E2E_RUNTIME:-bwrap}
  local root=$E2E_TMP/rootfs-$1-$runtime image=$E2E_TMP/images/$1-$runtime.sqsh dir
  shift
  rm -rf "$root"
  cp -a "$E2E_TMP/rootfs-alpha" "$root"
  for dir; do
    if [[ $dir == *=* ]]; then printf '%s\n' "${dir#*=}" >"$root/${dir%%=*}"; else mkdir -p "$root/$dir"; fi
  done
  write_enroot_rc "$root"
  cat >"$root/entrypoint.sh"
  chmod 755 "$root/entrypoint.sh"
  mksquashfs "$root" "$image" -noappend -quiet -all-root -no-progress >/dev/null
  chmod 644 "$image"
  warm_entry "$image"
}

# write_enroot_rc ROOT: the /etc/rc enroot imports with an image that has an entrypoint:
# it runs /entrypoint.sh (which the caller writes) around the command.
write_enroot_rc() {
  cat >"$1/etc/rc" <<'EOF'
cd / || exit 1
if [ -s /etc/rc.local ]; then
    . /etc/rc.local
fi
exec /entrypoint.sh "$@"
EOF
}
