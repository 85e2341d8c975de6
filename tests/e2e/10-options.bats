# srun-side rejections: the contract's exact messages, srun exits non-zero,
# nothing is launched and the node stays idle.
load helpers

@test "--container-cache without an image is rejected" {
  run srun_as_user --container-cache true
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: --container-cache requires --container-image"* ]]
  assert_node_idle
}

@test "PYXIS_CONTAINER_CACHE alone, on a step without an image, changes nothing" {
  E2E_ENV="PYXIS_CONTAINER_CACHE=1" run srun_as_user --quiet sh -c 'test -e /etc/debian_version && id -u'
  [ "$status" -eq 0 ]
  [ "$output" = "$(user_uid)" ]
  assert_node_idle
}

@test "--container-name flags are pyxis's in cache mode: exec on a container that is not running fails, and leaves nothing" {
  run srun_as_user --container-cache --container-image="$ALPHA" --container-name=mine:exec true
  [ "$status" -ne 0 ]
  [[ $output == *'pyxis-cache: error: "exec" flag was passed to --container-name but the container is not running'* ]]
  ! ls -A "$E2E_BASE/$(user_uid)" | grep -q '^\.pyxis_cache_named\.' || false
  assert_node_idle
}

@test "the name's flags also apply when cache mode and the name come from the environment" {
  E2E_ENV="PYXIS_CONTAINER_CACHE=1 PYXIS_CONTAINER_IMAGE=$ALPHA PYXIS_CONTAINER_NAME=mine:exec" run srun_as_user true
  [ "$status" -ne 0 ]
  [[ $output == *'"exec" flag was passed to --container-name but the container is not running'* ]]
}

@test "no container option: the plugin stays out of the way" {
  run srun_as_user --quiet sh -c 'test -e /etc/debian_version && id -u'
  [ "$status" -eq 0 ]
  [ "$output" = "$(user_uid)" ]
}
