# The collector and the in-use lock held by slurmstepd for the life of a step.
# <base> is a 64 MiB tmpfs: one busybox entry is a few percent of it, so
# high=2/low=1 forces a collection that would evict every unlocked entry.
load helpers

# A step left waiting by a failed test is released, not kept holding its entry.
teardown() {
  touch "$E2E_WORK/pxc-e2e-release" 2>/dev/null || true
}

gc_all() {
  cli gc --json --set container_cache_gc_high=2 --set container_cache_gc_low=1
}

@test "an entry in use by a running step survives a collection" {
  local name marker=$E2E_WORK/pxc-e2e-started release=$E2E_WORK/pxc-e2e-release
  name=$(entry_name "$BETA")
  rm -f "$marker" "$release"
  # A step holds an entry it found; a cold one runs from a mount and holds none.
  warm_entry "$BETA"
  # The step runs until the test (or teardown) releases it, not for a time that a slow gc could outlast.
  as "$E2E_USER" srun --container-cache --container-image="$BETA" \
    sh -c "echo started > $marker; i=0; while [ ! -e $release ] && [ \$i -lt 3000 ]; do sleep 0.1; i=\$((i + 1)); done
           cat /etc/os-release" >"$E2E_TMP/gc-step.out" 2>&1 3>&- &
  local step=$!
  for _ in $(seq 600); do [ -e "$marker" ] && break; sleep 0.1; done
  [ -e "$marker" ]

  run gc_all
  echo "$output"
  [ "$status" -eq 0 ]
  [ -d "$E2E_BASE/$(user_uid)/$name" ]
  # Reported as skipped because in use, and not evicted.
  [[ $output == *'"skippedInUse":[{"name":"'"$name"'"'* ]]
  [[ $output != *'"evicted":['*'"name":"'"$name"'"'*'],"skippedInUse"'* ]]

  touch "$release"
  wait "$step"
  grep -q '"pyxis-cache e2e beta"' "$E2E_TMP/gc-step.out"

  # The step is over: its lock is released and the entry can go.
  run gc_all
  [ "$status" -eq 0 ]
  [ ! -e "$E2E_BASE/$(user_uid)/$name" ]
}

@test "an unlocked entry of another user is evicted above the high watermark" {
  run as "$E2E_USER2" srun --container-cache --container-image="$ALPHA" true
  [ "$status" -eq 0 ]
  local name
  name=$(entry_name "$ALPHA" "$E2E_USER2")
  wait_entry "$ALPHA" "$E2E_USER2"

  run gc_all
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *"$name"* ]]
  [ ! -e "$E2E_BASE/$(user_uid "$E2E_USER2")/$name" ]
}

@test "after an eviction the next step unpacks the image again" {
  run srun_as_user --container-cache --container-image="$ALPHA" cat /etc/os-release
  [ "$status" -eq 0 ]
  wait_entry "$ALPHA"
  run gc_all
  [ "$status" -eq 0 ]
  [ ! -e "$E2E_BASE/$(user_uid)/$(entry_name "$ALPHA")" ]
  run srun_as_user --container-cache --container-image="$ALPHA" cat /etc/os-release
  [ "$status" -eq 0 ]
  [[ $output == *'"pyxis-cache e2e alpha"'* ]]
}
