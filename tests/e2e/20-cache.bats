# Cache mode: the task runs in the cached, read-only rootfs as the user.
load helpers

@test "the task sees the image, its own uid and its working directory" {
  run srun_as_user --container-cache --container-image="$ALPHA" sh -c 'cat /etc/os-release; id -u; pwd'
  [ "$status" -eq 0 ]
  [[ $output == *'PRETTY_NAME="pyxis-cache e2e alpha"'* ]]
  [ "${lines[3]}" = "$(user_uid)" ]
  [ "${lines[4]}" = "$E2E_WORK" ]
}

@test "writing to / fails with Read-only file system" {
  run srun_as_user --container-cache --container-image="$ALPHA" sh -c 'touch /pxc-e2e-file'
  [ "$status" -ne 0 ]
  [[ $output == *"Read-only file system"* ]]
  [ ! -e "$E2E_BASE/$(user_uid)/$(entry_name)/pxc-e2e-file" ]
}

@test "srun's exit code is the task's" {
  run srun_as_user --container-cache --container-image="$ALPHA" sh -c 'exit 7'
  [ "$status" -eq 7 ]
  run srun_as_user --container-cache --container-image="$ALPHA" true
  [ "$status" -eq 0 ]
}

@test "<base>/<uid> is mode 0700 and owned by the user" {
  run srun_as_user --container-cache --container-image="$ALPHA" true
  [ "$status" -eq 0 ]
  [ "$(stat -c '%a %u %g' "$E2E_BASE/$(user_uid)")" = "700 $(user_uid) $(user_gid)" ]
  [ "$(stat -c '%u' "$E2E_BASE")" = 0 ]
}

@test "a step repairs <base>/<uid> (pyxis-cache prepare)" {
  run srun_as_user --container-cache --container-image="$ALPHA" true
  [ "$status" -eq 0 ]
  chmod 755 "$E2E_BASE/$(user_uid)"
  run srun_as_user --container-cache --container-image="$ALPHA" true
  [ "$status" -eq 0 ]
  [ "$(stat -c '%a %u' "$E2E_BASE/$(user_uid)")" = "700 $(user_uid)" ]
}

@test "the entry name is stable across runs and is what 'pyxis-cache key' prints" {
  local name
  name=$(entry_name "$ALPHA")
  [[ $name == pyxis_cache_u$(user_uid)_* ]]
  run srun_as_user --container-cache --container-image="$ALPHA" true
  [ "$status" -eq 0 ]
  wait_entry "$ALPHA"
  local before
  before=$(stat -c %i "$E2E_BASE/$(user_uid)/$name")
  run srun_as_user --container-cache --container-image="$ALPHA" true
  [ "$status" -eq 0 ]
  [ "$(stat -c %i "$E2E_BASE/$(user_uid)/$name")" = "$before" ]
  [ "$(find "$E2E_BASE/$(user_uid)" -maxdepth 1 -name 'pyxis_cache_*' | wc -l)" -eq 1 ]
}

@test "the unpacked files belong to the user" {
  run srun_as_user --container-cache --container-image="$ALPHA" true
  [ "$status" -eq 0 ]
  wait_entry "$ALPHA"
  [ "$(stat -c %u "$E2E_BASE/$(user_uid)/$(entry_name)/bin/busybox")" = "$(user_uid)" ]
}

@test "cache mode from PYXIS_CONTAINER_CACHE=1 and PYXIS_CONTAINER_IMAGE" {
  E2E_ENV="PYXIS_CONTAINER_CACHE=1 PYXIS_CONTAINER_IMAGE=$BETA" run srun_as_user cat /etc/os-release
  [ "$status" -eq 0 ]
  [[ $output == *'"pyxis-cache e2e beta"'* ]]
  wait_entry "$BETA"
}

@test "PYXIS_CONTAINER_CACHE takes pyxis's boolean words; false ones and others leave cache mode off" {
  local word image
  for word in true yes y; do
    image=$(fresh_image "bool-$word")
    E2E_ENV="PYXIS_CONTAINER_CACHE=$word" run srun_as_user --container-image="$image" true
    [ "$status" -eq 0 ]
    wait_entry "$image"
  done
  for word in 0 false no n maybe; do
    image=$(fresh_image "bool-$word")
    E2E_ENV="PYXIS_CONTAINER_CACHE=$word" run srun_as_user --container-image="$image" cat /etc/os-release
    [ "$status" -eq 0 ]
    [[ $output == *'"pyxis-cache e2e alpha"'* ]]
    [ ! -e "$E2E_BASE/$(user_uid)/$(entry_name "$image")" ]
  done
}

@test "the command line wins over PYXIS_CONTAINER_IMAGE" {
  E2E_ENV="PYXIS_CONTAINER_CACHE=1 PYXIS_CONTAINER_IMAGE=$BETA" run srun_as_user --container-image="$ALPHA" cat /etc/os-release
  [ "$status" -eq 0 ]
  [[ $output == *'"pyxis-cache e2e alpha"'* ]]
}

@test "a plain --container-name runs in cache mode, its layer kept in a directory of the cache's (tests/e2e/59-named.bats)" {
  local dir
  dir=$E2E_BASE/$(user_uid)/.pyxis_cache_named.g.6d696e65 # container_scope=global (pyxis's default): "mine" in hex
  run srun_as_user --container-image="$ALPHA" --container-name=mine cat /etc/os-release
  [ "$status" -eq 0 ]
  [[ $output == *'"pyxis-cache e2e alpha"'* ]]
  [ ! -e "$E2E_BASE/$(user_uid)/mine" ]
  [ -d "$dir/upper" ]
  rm -rf "$dir"
}

@test "a relative image path resolves against the job's working directory" {
  as "$E2E_USER" cp "$ALPHA" "$E2E_WORK/rel.sqsh"
  run srun_as_user --container-cache --container-image=rel.sqsh cat /etc/os-release
  [ "$status" -eq 0 ]
  [[ $output == *'"pyxis-cache e2e alpha"'* ]]
  # The image's entry (made in the background after a cold step from a mount).
  wait_entry "$E2E_WORK/rel.sqsh"
}

@test "the job's environment, home and working directory reach the task" {
  E2E_ENV="PXC_E2E_VAR=hello" run srun_as_user --quiet --container-cache --container-image="$ALPHA" \
    sh -c 'echo "$PXC_E2E_VAR"; echo from-task > "$HOME/pxc-e2e-home"; echo from-task > ./pxc-e2e-cwd'
  [ "$status" -eq 0 ]
  [ "$output" = hello ]
  [ "$(cat "$E2E_HOME/pxc-e2e-home")" = from-task ]
  [ "$(cat "$E2E_WORK/pxc-e2e-cwd")" = from-task ]
}

@test "every task of a multi-task step runs in the container" {
  run srun_as_user --quiet -n 2 --container-cache --container-image="$ALPHA" sh -c 'grep -c "^PRETTY_NAME=.*e2e alpha" /etc/os-release'
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" -eq 2 ]
  [ "${lines[0]}" = 1 ] && [ "${lines[1]}" = 1 ]
}

@test "a warm cache-mode srun reuses the entry as it is (timing is reported)" {
  run srun_as_user --container-cache --container-image="$ALPHA" true
  [ "$status" -eq 0 ]
  wait_entry "$ALPHA"
  local start end entry before
  entry=$E2E_BASE/$(user_uid)/$(entry_name "$ALPHA")
  before=$(stat -c %i "$entry")
  start=$(date +%s%N)
  run srun_as_user --container-cache --container-image="$ALPHA" true
  end=$(date +%s%N)
  [ "$status" -eq 0 ]
  local cached=$(((end - start) / 1000000))
  start=$(date +%s%N)
  run srun_as_user true
  end=$(date +%s%N)
  echo "# warm srun --container-cache true: ${cached} ms; plain srun true: $(((end - start) / 1000000)) ms" >&3
  # Quick because nothing was unpacked again: the same directory, not a new one (no time budget of one machine).
  [ "$(stat -c %i "$entry")" = "$before" ]
  [ -z "$(find "$E2E_BASE/$(user_uid)" -maxdepth 1 -name '.pyxis_cache_tmp.*')" ]
}

@test "the task inherits no descriptor from the plugin" {
  run srun_as_user --container-cache --container-image="$ALPHA" sh -c 'ls -l /proc/$$/fd'
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output != *memfd* ]]
  [[ $output != *pyxis_cache_lock* ]]
}
