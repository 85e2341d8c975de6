# 32 concurrent srun steps of one cold image (run by tests/faults/run.sh through the e2e harness).
BATS_TEST_DIRNAME=$E2E_REPO/tests/e2e
load "$E2E_REPO/tests/e2e/helpers"

@test "srun32: 32 concurrent steps of one cold image all succeed and publish one entry" {
  cli gc --all >/dev/null
  local name=$(entry_name "$ALPHA") i pids=() failed=0
  [ ! -e "$E2E_BASE/$(user_uid)/$name" ]
  for i in $(seq 32); do
    srun_as_user --container-cache --container-image="$ALPHA" sh -c 'cat /etc/os-release' >"$E2E_TMP/srun32.$i" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || { failed=$((failed + 1)); cat "$E2E_TMP/srun32.$((i + 1))" >&2; }; done
  [ "$failed" -eq 0 ]
  for i in $(seq 32); do grep -q 'pyxis-cache e2e alpha' "$E2E_TMP/srun32.$i"; done
  # Cold steps start from a FUSE mount: the entry is published in the background, once,
  # and no unpack of it is left behind. (Only this image's names: a late creator of an
  # earlier case on this node may still publish its own entry meanwhile.)
  wait_entry "$ALPHA"
  local dir=$E2E_BASE/$(user_uid)
  for _ in $(seq 100); do [ -z "$(find "$dir" -maxdepth 1 -name ".pyxis_cache_tmp.$name.*")" ] && break; sleep 0.1; done
  ls -la "$dir" >&2
  [ -d "$dir/$name" ]
  [ "$(find "$dir" -maxdepth 1 -name ".pyxis_cache_tmp.$name.*" | wc -l)" -eq 0 ]
  assert_node_idle
}
