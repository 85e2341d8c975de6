# Named containers (--container-name=NAME[:FLAGS], PYXIS_CONTAINER_NAME), pyxis 0.24's meaning:
# a layer of the container's own on the cache filesystem over the cached entry, kept for the
# job's later steps (container_scope=job) or across jobs (global). Once per runtime: run.sh runs
# this file with E2E_RUNTIME=bwrap and again with E2E_RUNTIME=enroot (docs/pyxis.md).
load helpers

RUNTIME=${E2E_RUNTIME:-bwrap}

setup_file() {
  runtime_available || return 0
  named_scope job
  cp "$ALPHA" "$E2E_TMP/images/named-$RUNTIME.sqsh"
  chmod 644 "$E2E_TMP/images/named-$RUNTIME.sqsh"
  warm_entry "$E2E_TMP/images/named-$RUNTIME.sqsh"
}

teardown_file() {
  runtime_available || return 0
  write_plugstack "$E2E_TMP/plugstack.conf"
  slurmd_restart_with
  rm -rf "$E2E_BASE/$(user_uid)"/.pyxis_cache_named.*
}

setup() {
  skip_without_runtime
  IMG=$E2E_TMP/images/named-$RUNTIME.sqsh
  USER_DIR=$E2E_BASE/$(user_uid)
}

# named_scope job|global: the line's container_scope, for srun and for slurmd.
named_scope() {
  local line
  line=$(plugstack_line "container_cache_runtime=$RUNTIME" "container_scope=$1")
  write_plugstack "$E2E_TMP/plugstack.conf" "$line"
  [[ $(cat "$E2E_TMP/slurmd/plugstack.conf") == "$line" ]] || slurmd_restart_with "$line"
}

# in_job SCRIPT ARGS...: one job (salloc) whose steps SCRIPT runs, as the user; $1... are ARGS.
in_job() {
  local script=$1
  shift
  as "$E2E_USER" salloc -Q sh -c "set -e; $script" sh "$@"
}

# named_dirs: the named containers' directories in the user's directory.
named_dirs() { ls -A "$USER_DIR" | grep '^\.pyxis_cache_named\.' || true; }

# hex NAME: the name as a named container's directory has it.
hex() { printf %s "$1" | od -An -tx1 | tr -d ' \n'; }

entry_listing() {
  (cd "$1" && find . -printf '%p %y %m %s %l\n' | sort | while read -r path type rest; do
    if [[ $type == f ]]; then echo "$path $type $rest $(sha256sum <"$path" | cut -d' ' -f1)"; else echo "$path $type $rest"; fi
  done)
}

@test "$RUNTIME: named: a step sees what an earlier step of the job wrote under its name, no other name or job does, the entry stays byte-identical, and the layer goes with the job" {
  local entry before job
  entry=$USER_DIR/$(entry_name "$IMG")
  before=$(entry_listing "$entry")
  run in_job '
    srun --container-image="$1" --container-name=box --container-writable sh -c "echo kept >/pxc-named; rm /etc/os-release; echo \$SLURM_JOB_ID"
    test -e "$2/.pyxis_cache_named.$SLURM_JOB_ID.'"$(hex box)"'/upper/pxc-named" && echo "layer on the cache filesystem"
    srun --container-name=box sh -c "cat /pxc-named; test ! -e /etc/os-release && echo still-removed"
    PYXIS_CONTAINER_NAME=box:no_exec srun --container-writable sh -c "echo again >>/pxc-named"
    srun --container-image="$1" --container-name=box sh -c "cat /pxc-named"
    srun --container-image="$1" --container-name=other sh -c "test ! -e /pxc-named && test -e /etc/os-release && echo other-clean"
    srun --container-cache --container-image="$1" sh -c "test ! -e /pxc-named && echo unnamed-clean"
  ' "$IMG" "$USER_DIR"
  echo "$output"
  [ "$status" -eq 0 ]
  job=$(grep -m1 -x '[0-9][0-9]*' <<<"$output")
  grep -qx "layer on the cache filesystem" <<<"$output"
  grep -qx still-removed <<<"$output"
  [ "$(grep -cx kept <<<"$output")" -eq 2 ]
  grep -qx again <<<"$output"
  grep -qx other-clean <<<"$output"
  grep -qx unnamed-clean <<<"$output"
  grep -q "reusing existing container filesystem: box" "$E2E_TMP/slurmd/slurmd.log"
  # The entry is every step's lower layer, never written.
  diff <(echo "$before") <(entry_listing "$entry")
  # The job's epilog removes its named containers (it runs after salloc returns: waited for).
  wait_for 60 eval "! named_dirs | grep -q '^\.pyxis_cache_named\.$job\.'"
  # Another job knows no "box".
  run srun_as_user --container-name=box cat /pxc-named
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: error: a container with name \"box\" does not exist, and --container-image is not set"* ]]
  run srun_as_user --container-image="$IMG" --container-name=box sh -c 'test ! -e /pxc-named && echo fresh'
  [ "$status" -eq 0 ]
  grep -qx fresh <<<"$output"
  assert_node_idle
  wait_for 60 eval '[ -z "$(named_dirs)" ]'
}

@test "$RUNTIME: named: create on an existing name and exec on a stopped one fail with pyxis's messages; a failed first step leaves nothing; a cold image's first step waits for its entry" {
  local cold
  cold=$(fresh_image "named-cold-$RUNTIME")
  run in_job '
    srun --container-image="$1" --container-name=box true
    srun --container-image="$1" --container-name=box:create true || echo "create refused"
    srun --container-name=box:exec true || echo "exec refused"
    srun --container-image="$3" --container-name=new:create sh -c "echo created"
    srun --container-name=new sh -c "echo created again"
    srun --container-name=nothing:exec true || echo "exec on nothing refused"
    ls -A "$2" | grep "^\.pyxis_cache_named\.$SLURM_JOB_ID\." | sort
  ' "$IMG" "$USER_DIR" "$cold"
  echo "$output"
  [ "$status" -eq 0 ]
  # A named container sits on the entry, never on a FUSE mount: its first step waited for the unpack.
  [ -d "$USER_DIR/$(entry_name "$cold")" ]
  grep -qx "created again" <<<"$output"
  ! grep -q "$(entry_name "$cold") is being unpacked: the step starts from a FUSE mount" "$E2E_TMP/slurmd/slurmd.log" || false
  grep -q "pyxis-cache: error: \"create\" flag was passed to --container-name but the container already exists" <<<"$output"
  grep -qx "create refused" <<<"$output"
  grep -q "pyxis-cache: error: \"exec\" flag was passed to --container-name but the container is not running" <<<"$output"
  grep -qx "exec refused" <<<"$output"
  grep -qx created <<<"$output"
  grep -qx "exec on nothing refused" <<<"$output"
  # box and new, not nothing.
  [ "$(grep -c '^\.pyxis_cache_named\.' <<<"$output")" -eq 2 ]
  grep -q "^\.pyxis_cache_named\.[0-9]*\.$(hex new)$" <<<"$output"
  ! grep -q "$(hex nothing)" <<<"$output" || false
  assert_node_idle
}

@test "$RUNTIME: named: invalid names and flags are refused before the step, as pyxis refuses them" {
  local long
  long=$(printf 'n%.0s' $(seq 101))
  run srun_as_user --container-image="$IMG" --container-name=a/b true
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: --container-name: invalid name: a/b (a name cannot contain '/')"* ]]
  run srun_as_user --container-image="$IMG" --container-name=:exec true
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: --container-name: empty name"* ]]
  run srun_as_user --container-image="$IMG" --container-name=box:bogus true
  [ "$status" -ne 0 ]
  [[ $output == *'pyxis-cache: --container-name: flag must be "auto", "create", "exec" or "no_exec"'* ]]
  run srun_as_user --container-image="$IMG" --container-name="$long" true
  [ "$status" -ne 0 ]
  [[ $output == *"(longer than 100 bytes)"* ]]
  E2E_ENV="PYXIS_CONTAINER_NAME=x/y" run srun_as_user --container-image="$IMG" true
  [ "$status" -ne 0 ]
  [[ $output == *"invalid name: x/y (a name cannot contain '/') (from PYXIS_CONTAINER_NAME)"* ]]
  [ -z "$(named_dirs)" ]
  assert_node_idle
}

@test "$RUNTIME: named: a second step of a running name with exec is refused, one without waits for the first: never mounted twice" {
  rm -f "$E2E_WORK/named-go"
  as "$E2E_USER" mkfifo "$E2E_WORK/named-go"
  run in_job '
    srun --container-image="$1" --container-name=busy --container-writable sh -c "echo first >/pxc-first; read -r _ <$PWD/named-go; echo first-done" &
    first=$!
    for i in $(seq 600); do ls -A "$2" | grep -q "^\.pyxis_cache_mnt\..*\.$SLURM_JOB_ID\." && break; sleep 0.1; done
    srun --overlap --container-name=busy:exec true || echo "exec refused"
    srun --overlap --container-name=busy --container-writable sh -c "cat /pxc-first; echo second >/pxc-second" &
    second=$!
    timeout 120 sh -c "echo go >named-go"
    wait $first
    wait $second
    srun --container-name=busy sh -c "cat /pxc-first /pxc-second"
  ' "$IMG" "$USER_DIR"
  rm -f "$E2E_WORK/named-go"
  echo "$output"
  [ "$status" -eq 0 ]
  grep -q "pyxis-cache: --container-name: busy is in use by a running step" <<<"$output"
  grep -qx "exec refused" <<<"$output"
  grep -qx first-done <<<"$output"
  # The second step ran after the first let go, on what it wrote; the third sees both.
  [ "$(grep -cx first <<<"$output")" -eq 2 ]
  grep -qx second <<<"$output"
  assert_node_idle
}

@test "$RUNTIME: named: container_scope=global keeps a named container across jobs until it is removed" {
  local dir
  named_scope global
  dir=$USER_DIR/.pyxis_cache_named.g.$(hex kept)
  run srun_as_user --container-image="$IMG" --container-name=kept --container-writable sh -c 'echo across >/pxc-global'
  [ "$status" -eq 0 ]
  # Another job, no image: the container is there.
  run srun_as_user --container-name=kept cat /pxc-global
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qx across <<<"$output"
  [ -d "$dir/upper" ]
  # No epilog removes it; the collector does once unused for NAMED_MAX_AGE_SECONDS (tests/named.test.ts).
  run cli gc --json --stale-after 0
  [ "$status" -eq 0 ]
  [ -f "$dir/upper/pxc-global" ]
  rm -rf "$dir"
  named_scope job
}
