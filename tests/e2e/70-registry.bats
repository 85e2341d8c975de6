# Registry images through srun: a real registry on 127.0.0.1 (tests/lib/registry.sh), images
# built with umoci and pushed with skopeo, imported by enroot as the job user. The registry
# is asked at every start here (container_cache_registry_interval=0).
load helpers

registry() { bash "$E2E_REPO/tests/lib/registry.sh" "$@"; }

# enroot: the e2e suite's, else on PATH, else the one the unit tests build (tests/registry.ts).
enroot_dir() {
  local enroot=${E2E_ENROOT:-$(command -v enroot || true)}
  [[ -n $enroot ]] || enroot=${PYXIS_CACHE_TEST_CACHE:-/var/cache/pyxis-cache-test}/enroot-4.1.2/bin/enroot
  [[ -x $enroot ]] && dirname "$enroot"
}

setup_file() {
  local enroot tool
  enroot=$(enroot_dir) || skip "enroot is not installed (the unit tests build it: make test-unit)"
  for tool in docker-registry umoci skopeo; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (make bootstrap-test)"
  done
  export E2E_REGISTRY_DIR=$E2E_TMP/registry
  E2E_REGISTRY=$(registry start "$E2E_REGISTRY_DIR")
  export E2E_REGISTRY
  registry push "$E2E_REGISTRY_DIR" e2e/app:1 etc/marker=one >/dev/null
  # The command, through a wrapper that does nothing else unless a case asks it to remove a
  # user's directory right after the stub's `prepare` made it (once: the file names the uid).
  cat >"$E2E_TMP/registry-cli" <<WRAP
#!/bin/bash
if [[ \$1 == prepare && -s $E2E_TMP/remove-after-prepare ]]; then
  "$E2E_CLI" "\$@" || exit
  rm -rf "$E2E_BASE/\$(cat $E2E_TMP/remove-after-prepare)" && rm -f $E2E_TMP/remove-after-prepare
  exit
fi
exec "$E2E_CLI" "\$@"
WRAP
  chmod 755 "$E2E_TMP/registry-cli"
  # The stub gives the command slurmd's PATH, where enroot is found, as for the runtime.
  E2E_SLURMD_PATH=$enroot:$PATH PATH=$enroot:$PATH slurmd_restart_with \
    "$(plugstack_line container_cache_registry_interval=0 | sed "s|container_cache_cli=[^ ]*|container_cache_cli=$E2E_TMP/registry-cli|")"
}

teardown_file() {
  registry stop "$E2E_TMP/registry"
  slurmd_restart_with
}

# The job's environment lets enroot (and the digest lookup) use http:// for the test registry.
srun_http() { E2E_ENV="ENROOT_ALLOW_HTTP=y" srun_as_user "$@"; }
srun_ref() { srun_http --container-cache "$@"; }

entries_of() { find "$E2E_BASE/$(user_uid "$1")" -maxdepth 1 -name 'pyxis_cache_u*' -printf '%f\n' | sort; }

@test "a registry tag: the first step imports it, the next reuses it; the task sees the image" {
  run srun_ref --quiet --container-image="$E2E_REGISTRY#e2e/app:1" cat /etc/marker
  [ "$status" -eq 0 ]
  [ "$output" = one ]
  # No file to mount before the import: the cold step waited for its entry (FUSE is on here).
  grep -q "pyxis-cache: a registry image: a cold step waits for the unpack" \
    "$E2E_TMP/slurmd/slurmd.log"
  first=$(ENROOT_ALLOW_HTTP=y "$E2E_CLI" key --image "$E2E_REGISTRY#e2e/app:1" --uid "$(user_uid)")
  entries=$(entries_of "$E2E_USER")
  inode=$(stat -c %i "$E2E_BASE/$(user_uid)/$first")
  run srun_ref --container-image="docker://$E2E_REGISTRY/e2e/app:1" sh -c 'cat /etc/marker; id -u'
  [ "$status" -eq 0 ]
  [ "${lines[-2]}" = one ]
  [ "${lines[-1]}" = "$(user_uid)" ]
  [ "$(entries_of "$E2E_USER")" = "$entries" ]
  [ "$(stat -c %i "$E2E_BASE/$(user_uid)/$first")" = "$inode" ]
  run cli status --json
  [[ $output == *"\"image\":\"$E2E_REGISTRY#e2e/app:1\",\"digest\":\"sha256:"* ]]
  [ "$(find "$E2E_BASE/$(user_uid)" -maxdepth 1 -name '.pyxis_cache_tmp.*' | wc -l)" -eq 0 ]
}

@test "the tag pushed again with other content: the next step runs the new content in a new entry" {
  run srun_ref --quiet --container-image="$E2E_REGISTRY#e2e/app:1" cat /etc/marker
  [ "$output" = one ]
  before=$(entries_of "$E2E_USER")
  registry push "$E2E_REGISTRY_DIR" e2e/app:1 etc/marker=two
  run srun_ref --quiet --container-image="$E2E_REGISTRY#e2e/app:1" cat /etc/marker
  [ "$status" -eq 0 ]
  [ "$output" = two ]
  [ "$(comm -13 <(echo "$before") <(entries_of "$E2E_USER") | wc -l)" -eq 1 ]
}

@test "registry errors fail the step with one line and leave the node idle" {
  run srun_ref --container-image="$E2E_REGISTRY#e2e/none:1" true
  [ "$status" -ne 0 ]
  [[ $output == *"image not found in the registry: $E2E_REGISTRY/e2e/none:1"* ]]
  assert_node_idle
  run srun_ref --container-image="no-such-host.invalid#e2e/app:1" true
  [ "$status" -ne 0 ]
  [[ $output == *"cannot reach registry no-such-host.invalid"* ]]
  assert_node_idle
}

@test "another user's import is never reused" {
  run srun_ref --container-image="$E2E_REGISTRY#e2e/app:1" true
  [ "$status" -eq 0 ]
  run as "$E2E_USER2" env ENROOT_ALLOW_HTTP=y srun --container-cache --container-image="$E2E_REGISTRY#e2e/app:1" \
    sh -c 'cat /etc/marker; id -u'
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = "$(user_uid "$E2E_USER2")" ]
  theirs=$(entries_of "$E2E_USER2")
  [ -n "$theirs" ]
  [ "$(stat -c %u "$E2E_BASE/$(user_uid "$E2E_USER2")/$theirs/etc/marker")" = "$(user_uid "$E2E_USER2")" ]
}

@test "a user's directory removed between the stub's prepare and their first registry step: prepared again, the step starts" {
  local uid
  uid=$(user_uid "$E2E_USER2")
  rm -rf "${E2E_BASE:?}/$uid"
  echo "$uid" >"$E2E_TMP/remove-after-prepare"
  run as "$E2E_USER2" env ENROOT_ALLOW_HTTP=y srun --quiet --container-cache --container-image="$E2E_REGISTRY#e2e/app:1" \
    sh -c 'cat /etc/marker; id -u'
  echo "$output"
  rm -f "$E2E_TMP/remove-after-prepare"
  [ "$status" -eq 0 ]
  grep -qxE 'one|two' <<<"$output"
  grep -qx "$uid" <<<"$output"
  grep -q "pyxis-cache: reuse failed and the user's directory is not ready: preparing it again" "$E2E_TMP/slurmd/slurmd.log"
  [ "$(stat -c '%u %a' "$E2E_BASE/$uid")" = "$uid 700" ]
}

@test "without --container-cache a registry image is imported for the step alone, and nothing of it stays" {
  run srun_http --container-image="$E2E_REGISTRY#e2e/app:1" cat /etc/marker
  [ "$status" -eq 0 ]
  grep -qxE "one|two" <<<"$output"
  # The step's directory goes when slurmstepd ends, just after srun returns.
  leftovers() { find "$E2E_BASE/$(user_uid)" -maxdepth 1 \( -name '.pyxis_cache_step_*' -o -name '.pyxis_cache_tmp.*' \); }
  for ((i = 0; i < 100; i++)); do
    [ -z "$(leftovers)" ] && break
    sleep 0.1
  done
  [ -z "$(leftovers)" ]
}

# Last: it stops the registry.
@test "registry stopped: a known reference still starts (stderr says so); an unknown one fails, node idle" {
  run srun_ref --container-image="$E2E_REGISTRY#e2e/app:1" cat /etc/marker
  [ "$status" -eq 0 ]
  registry stop "$E2E_REGISTRY_DIR"
  run srun_ref --container-image="$E2E_REGISTRY#e2e/app:1" cat /etc/marker
  [ "$status" -eq 0 ]
  [[ $output == *"warning: cannot reach registry $E2E_REGISTRY"*"using sha256:"* ]]
  # The task's line, wherever srun put it among the stub's stderr (the two streams interleave freely).
  grep -qxE 'one|two' <<<"$output"
  run srun_ref --container-image="$E2E_REGISTRY#e2e/other:1" true
  [ "$status" -ne 0 ]
  [[ $output == *"no digest of $E2E_REGISTRY#e2e/other:1 is known on this node"* ]]
  assert_node_idle
}
