load helpers
@test "smoke" {
  run srun_as_user --container-cache --container-image="$ALPHA" sh -c 'cat /etc/os-release; id -u; pwd; touch /x'
  echo "$output"
  false
}
