# The enroot runtime only (run.sh runs *-enroot.bats in its enroot pass).
load helpers

setup() {
  [[ -n ${E2E_ENROOT:-} ]] || skip "enroot is not installed and could not be built: the enroot runtime's cases are skipped"
}

teardown() {
  [[ -n ${E2E_ENROOT:-} ]] || return 0
  slurmd_restart_with
}

@test "enroot: not in slurmd's PATH fails the step with what was searched, and the node stays idle" {
  local path=$E2E_TMP/slurmd-path-without-enroot
  mkdir -p "$path"
  E2E_SLURMD_PATH=$path slurmd_restart_with "$(plugstack_line container_cache_runtime=enroot)"
  run srun_as_user --container-cache --container-image="$ALPHA" true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: container_cache_runtime: enroot: not found in slurmd's PATH ($path)"* ]]
  assert_node_idle
}
