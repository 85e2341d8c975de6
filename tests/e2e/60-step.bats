# Without --container-cache: the rootfs is unpacked for the step only.
load helpers

step_leftovers() {
  find "$E2E_BASE/$(user_uid)" -mindepth 1 -maxdepth 1 -name '.pyxis_cache_step_*' 2>/dev/null
}

# srun returns once the tasks have exited; slurm_spank_exit's 'pyxis-cache
# release' may still be running then. Wait (10 s at most) for it to finish.
no_step_leftovers() {
  local i
  for ((i = 0; i < 100; i++)); do
    [ -z "$(step_leftovers)" ] && return 0
    sleep 0.1
  done
  step_leftovers
  return 1
}

@test "--container-image alone runs the task in the image, read-only" {
  run srun_as_user --container-image="$BETA" sh -c 'cat /etc/os-release; id -u; pwd; touch /pxc-e2e-file'
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *'"pyxis-cache e2e beta"'* ]]
  [[ $output == *"$(user_uid)"* ]]
  [[ $output == *"$E2E_WORK"* ]]
  [[ $output == *"Read-only file system"* ]]
}

@test "--container-image alone leaves nothing behind and creates no cache entry" {
  rm -rf "${E2E_BASE:?}/$(user_uid)/$(entry_name "$BETA")"
  run srun_as_user --container-image="$BETA" sh -c 'exit 3'
  [ "$status" -eq 3 ]
  no_step_leftovers
  [ ! -e "$E2E_BASE/$(user_uid)/$(entry_name "$BETA")" ]
}

@test "--container-image with PYXIS_CONTAINER_IMAGE from the environment" {
  E2E_ENV="PYXIS_CONTAINER_IMAGE=$ALPHA" run srun_as_user cat /etc/os-release
  [ "$status" -eq 0 ]
  [[ $output == *'"pyxis-cache e2e alpha"'* ]]
  no_step_leftovers
}

@test "--container-writable without cache mode makes the step's copy writable" {
  run srun_as_user --container-image="$ALPHA" --container-writable sh -c 'touch /pxc-e2e-file && echo wrote'
  [ "$status" -eq 0 ]
  [ "$output" = wrote ]
  no_step_leftovers
}
