# Every failure makes srun exit non-zero with the message on its stderr and
# leaves the node idle (never drained). slurmd reads its plugstack.conf at
# start only, so slurmstepd-side configuration cases restart it.
load helpers

teardown_file() {
  # Back to the default configuration for the files that follow.
  if [[ -e $E2E_TMP/slurmd/dirty ]]; then
    slurmd_restart_with
    rm -f "$E2E_TMP/slurmd/dirty"
  fi
  write_plugstack "$E2E_TMP/plugstack.conf"
}

# slurmd_config LINE: give slurmstepd (not srun) another plugstack line.
slurmd_config() {
  touch "$E2E_TMP/slurmd/dirty"
  slurmd_restart_with "$@"
}

@test "a missing image (cache mode) fails the step with the CLI's message" {
  run srun_as_user --container-cache --container-image="$E2E_TMP/images/missing.sqsh" true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache:"*"missing.sqsh"* ]]
  assert_node_idle
}

@test "a missing image (no cache mode) fails the step with a message" {
  run srun_as_user --container-image="$E2E_TMP/images/missing.sqsh" true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache:"*"missing.sqsh"* ]]
  assert_node_idle
}

@test "an image whose name holds a newline writes no forged line into slurmd's log (control bytes escaped)" {
  local name=$'x\n[2026-12-07T13:00:00.000] error: FORGED.sqsh'
  as "$E2E_USER" true
  install -m 644 -o "$E2E_USER" "$ALPHA" "$E2E_WORK/$name"
  run srun_as_user --container-cache --container-image="./$name" true
  echo "$output"
  [ "$status" -eq 0 ]
  wait_entry "$E2E_WORK/$name"
  # The name is in the log (the cold step's FUSE mount names its image), escaped, on one line.
  grep -qF 'FUSE mount of ./x\n[2026-12-07T13:00:00.000] error: FORGED.sqsh' "$E2E_TMP/slurmd/slurmd.log"
  ! grep -q '^\[2026-12-07T13:00:00.000\] error: FORGED' "$E2E_TMP/slurmd/slurmd.log" || false
  rm -f "$E2E_WORK/$name"
  assert_node_idle
}

@test "an image the user cannot read fails the step" {
  install -m 600 "$ALPHA" "$E2E_TMP/images/secret.sqsh"
  run srun_as_user --container-cache --container-image="$E2E_TMP/images/secret.sqsh" true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache:"* ]]
  assert_node_idle
}

@test "a failure in a batch job does not drain the node" {
  cat >"$E2E_WORK/job.sh" <<JOB
#!/bin/sh
srun --container-cache --container-image=$E2E_TMP/images/missing.sqsh true
JOB
  chmod 755 "$E2E_WORK/job.sh"
  run as "$E2E_USER" sbatch --wait -o "$E2E_WORK/job.out" "$E2E_WORK/job.sh"
  echo "$output"
  [ "$status" -ne 0 ]
  grep -q "pyxis-cache:.*missing.sqsh" "$E2E_WORK/job.out"
  assert_node_idle
}

@test "srun rejects a bad configuration: low >= high (names the key)" {
  write_plugstack "$E2E_TMP/plugstack.conf" "$(plugstack_line container_cache_gc_high=85 container_cache_gc_low=90)"
  run srun_as_user --container-cache --container-image="$ALPHA" true
  write_plugstack "$E2E_TMP/plugstack.conf"
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: container_cache_gc_low: invalid value: 90 (must be below container_cache_gc_high=85)"* ]]
  assert_node_idle
}

@test "slurmstepd rejects a bad configuration: low >= high" {
  slurmd_config "$(plugstack_line container_cache_gc_high=50 container_cache_gc_low=50)"
  run srun_as_user --container-cache --container-image="$ALPHA" true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: container_cache_gc_low: invalid value: 50 (must be below container_cache_gc_high=50)"* ]]
  assert_node_idle
}

@test "slurmstepd rejects an unknown key (names it)" {
  slurmd_config "$(plugstack_line container_cache_colour=blue)"
  run srun_as_user --container-cache --container-image="$ALPHA" true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: container_cache_colour: unknown key"* ]]
  assert_node_idle
  # A job that uses no container is not affected by the plugin's configuration.
  run srun_as_user true
  [ "$status" -eq 0 ]
}

@test "slurmstepd rejects a relative data path (names the key)" {
  slurmd_config "required $E2E_PLUGIN container_cache_data_path=relative/path container_cache_runtime=bwrap container_cache_cli=$E2E_CLI"
  run srun_as_user --container-cache --container-image="$ALPHA" true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: container_cache_data_path: invalid value: relative/path"* ]]
  assert_node_idle
}

@test "a missing runtime fails the step with a message" {
  # slurmstepd looks for the runtime in slurmd's PATH: one without bwrap.
  mkdir -p "$E2E_TMP/slurmd-path-without-bwrap"
  E2E_SLURMD_PATH=$E2E_TMP/slurmd-path-without-bwrap slurmd_config "$(plugstack_line)"
  run srun_as_user --container-cache --container-image="$ALPHA" true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: container_cache_runtime: bwrap: not found in slurmd's PATH ($E2E_TMP/slurmd-path-without-bwrap)"* ]]
  assert_node_idle
}

@test "a missing pyxis-cache command fails the step with a message" {
  slurmd_config "required $E2E_PLUGIN container_cache_data_path=$E2E_BASE container_cache_runtime=bwrap container_cache_cli=/nonexistent/pyxis-cache"
  run srun_as_user --container-cache --container-image="$ALPHA" true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: container_cache_cli: /nonexistent/pyxis-cache: No such file or directory"* ]]
  assert_node_idle
}

@test "an entry removed between reuse and lock is created again (retry)" {
  # A stand-in for a collector that wins the race: a wrapper around the real
  # command removes the entry right after the first 'reuse' printed its name
  # (and, with --no-wait, its state after a space).
  local wrapper=$E2E_TMP/racing-cli state=$E2E_WORK/pxc-e2e-raced
  rm -f "$state"
  cat >"$wrapper" <<WRAP
#!/bin/bash
out=\$("$E2E_CLI" "\$@") || { rc=\$?; echo "\$out"; exit \$rc; }
if [[ \$1 == reuse && ! -e $state ]]; then
  path=$E2E_BASE/\$(id -u)/\${out%% *}
  rm -rf "\$path" && echo "\$path" >$state
fi
echo "\$out"
WRAP
  chmod 755 "$wrapper"
  # The first reuse must find the entry (ready) for the race to be on its lock; and be a call
  # of the command: root's record of an earlier answer would start the step without one
  # (spank-stub/answers.c; removing the records is always safe).
  warm_entry "$BETA"
  rm -rf "$E2E_BASE/.pyxis_cache_answers"
  slurmd_config "required $E2E_PLUGIN container_cache_data_path=$E2E_BASE container_cache_runtime=bwrap container_cache_cli=$wrapper"
  run srun_as_user --container-cache --container-image="$BETA" cat /etc/os-release
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *'"pyxis-cache e2e beta"'* ]]
  [ -s "$state" ]
  grep -q "pyxis-cache: .* was removed before it was locked, retrying" "$E2E_TMP/slurmd/slurmd.log"
}
