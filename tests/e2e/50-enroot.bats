# The enroot runtime, where enroot is installed.
load helpers

setup_file() {
  if command -v enroot >/dev/null; then
    slurmd_restart_with "$(plugstack_line container_cache_runtime=enroot)"
  fi
}

teardown_file() {
  if command -v enroot >/dev/null; then
    slurmd_restart_with
  fi
}

setup() {
  command -v enroot >/dev/null || skip "enroot is not installed: enroot runtime cases skipped"
}

@test "enroot: the task sees the image and its own uid" {
  run srun_as_user --container-cache --container-image="$ALPHA" sh -c 'cat /etc/os-release; id -u'
  [ "$status" -eq 0 ]
  [[ $output == *'"pyxis-cache e2e alpha"'* ]]
  [ "${lines[-1]}" = "$(user_uid)" ]
}

@test "enroot: writing to / fails with Read-only file system" {
  run srun_as_user --container-cache --container-image="$ALPHA" touch /pxc-e2e-file
  [ "$status" -ne 0 ]
  [[ $output == *"Read-only file system"* ]]
}

@test "enroot: srun's exit code is the task's" {
  run srun_as_user --container-cache --container-image="$ALPHA" sh -c 'exit 7'
  [ "$status" -eq 7 ]
}
