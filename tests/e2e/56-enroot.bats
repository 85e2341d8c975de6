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

# site_enroot LINE...: a copy of the suite's enroot whose enroot.conf ends with LINE... (a site's
# configuration, which the installed enroot's other users must not see); prints its bin directory.
site_enroot() {
  local prefix dir=$E2E_TMP/enroot-site
  prefix=$(dirname "$(dirname "$E2E_ENROOT")")
  rm -rf "$dir"
  cp -a "$prefix" "$dir"
  sed -i "s|$prefix|$dir|g" "$dir/bin/enroot"
  printf '%s\n' "$@" >>"$dir/etc/enroot/enroot.conf"
  echo "$dir/bin"
}

@test "enroot: a site's ENROOT_ROOTFS_WRITABLE in enroot.conf is the default of --container-writable, as with pyxis; the flags win; the entry stays byte-identical" {
  local bin image entry before mode
  image=$E2E_TMP/images/site-writable.sqsh
  cp "$ALPHA" "$image"
  chmod 644 "$image"
  warm_entry "$image"
  entry=$E2E_BASE/$(user_uid)/$(entry_name "$image")
  before=$(entry_listing "$entry")
  # Stock enroot (no ENROOT_ROOTFS_WRITABLE): read-only, in cache mode and out of it.
  slurmd_restart_with "$(plugstack_line container_cache_runtime=enroot)"
  for mode in --container-cache --no-container-remap-root; do # cache mode, then out of it (a neutral option)
    run srun_as_user "$mode" --container-image="$image" sh -c 'echo x >/pxc-site'
    echo "stock $mode: $output"
    [ "$status" -ne 0 ]
    [[ $output == *"Read-only file system"* ]]
  done
  bin=$(site_enroot "ENROOT_ROOTFS_WRITABLE yes")
  E2E_SLURMD_PATH=$bin:$PATH slurmd_restart_with "$(plugstack_line container_cache_runtime=enroot)"
  # The site's default: writable, in the step's own layer (cache mode) or its own copy.
  for mode in --container-cache --no-container-remap-root; do # cache mode, then out of it (a neutral option)
    run srun_as_user "$mode" --container-image="$image" sh -c 'echo x >/pxc-site && cat /pxc-site'
    echo "site $mode: $output"
    [ "$status" -eq 0 ]
    [ "${lines[-1]}" = x ]
    E2E_ENV="PYXIS_CONTAINER_READONLY=1" run srun_as_user "$mode" --container-image="$image" sh -c 'echo x >/pxc-site'
    echo "site $mode, read-only: $output"
    [ "$status" -ne 0 ]
    [[ $output == *"Read-only file system"* ]]
  done
  run srun_as_user --container-cache --container-image="$image" sh -c 'test ! -e /pxc-site && echo clean'
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = clean ]
  [ "$(entry_listing "$entry")" = "$before" ]
  assert_node_idle
}
