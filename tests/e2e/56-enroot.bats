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

# enroot_copy DIR [not] [CONF]: enroot's bin/ at DIR, its files linked but for a copy of bin/enroot ("not": one
# the stub does not recognise, a comment added; CONF: reading CONF as its enroot.conf, a path the stub does not
# compare), an enroot-nsenter that writes what it was given (argv,
# environment) at the end of DIR/nsenter.out and execs enroot's own, and a readlink that writes a line to DIR/readlink.ran
# when bin/enroot's bash runs it (common::realpath in runtime::start; runtime::_start runs it too).
enroot_copy() {
  local dir=$1 real
  real=$(dirname "$E2E_ENROOT")
  mkdir -p "$dir"
  chmod 755 "$dir"
  ln -sf "$real"/enroot-* "$dir/"
  rm -f "$dir/enroot-nsenter"
  cp "$real/enroot" "$dir/enroot"
  [[ ${2:-} != not ]] || echo "# not the stub's" >>"$dir/enroot"
  [[ -z ${3:-} ]] || sed -i "s|^config::init \".*\"\$|config::init \"$3\"|" "$dir/enroot"
  cat >"$dir/enroot-nsenter" <<EOF
#!/bin/sh
{ for a in "\$@"; do printf '[%s]\n' "\$a"; done; echo ---; tr '\0' '\n' </proc/\$\$/environ | sort; } >>$dir/nsenter.out
exec $real/enroot-nsenter "\$@"
EOF
  cat >"$dir/readlink" <<EOF
#!/bin/sh
! tr '\\0' ' ' </proc/\$PPID/cmdline | grep -q '/enroot start ' || echo "\$*" >>$dir/readlink.ran
exec /usr/bin/readlink "\$@"
EOF
  : >"$dir/nsenter.out"
  : >"$dir/readlink.ran"
  chmod 666 "$dir/nsenter.out" "$dir/readlink.ran"
  chmod 755 "$dir/enroot" "$dir/enroot-nsenter" "$dir/readlink"
}

# The step's ids and paths differ from step to step: its mount's random suffix as M, numbers as N.
numbers_as_n() { sed -E 's/(\.pyxis_cache_mnt\.[^/]*\.)[^./]+/\1M/g; s/[0-9]+/N/g' "$@"; }

@test "enroot: the stub's own front end gives enroot-nsenter what enroot start gives it, and the task sees the same" {
  local side dir conf=$E2E_TMP/fe-etc/enroot.conf
  # A site's configuration: paths the stub overrides with $(id -u) in them, values of its own, a drop-in.
  mkdir -p "$conf.d"
  cat >"$conf" <<'CONF'
# site
ENROOT_RUNTIME_PATH /run/enroot/user-$(id -u)
ENROOT_DATA_PATH    "${HOME}/enroot-data/$(id -un)"
ENROOT_SQUASH_OPTIONS '-comp zstd' -b 1M
  NVIDIA_DRIVER_CAPABILITIES compute,utility
ENROOT_MOUNT_HOME no
http_proxy=http://proxy:3128
ENROOT_ZSTD_OPTIONS	"-19"
ENROOT_LOGIN_SHELL false
CONF
  printf 'ENROOT_MAX_CONNECTIONS 4\nno_proxy=localhost,127.0.0.1\n' >"$conf.d/10-site.conf"
  chmod -R a+rX "$E2E_TMP/fe-etc"
  for side in fe stub; do
    dir=$E2E_TMP/enroot-$side
    rm -rf "$dir"
    if [[ $side == fe ]]; then enroot_copy "$dir" not "$conf"; else enroot_copy "$dir" yes "$conf"; fi
    E2E_SLURMD_PATH=$dir:$PATH slurmd_restart_with "$(plugstack_line container_cache_runtime=enroot)"
    # As the stub calls it: plainly; with remap-root, writable, no home, a mount (enroot's mounts.d); with a
    # mount into /etc (then an --rc: enroot's realpath of it); with the image's entrypoint.
    mkdir -p "$E2E_TMP/fe-mount"
    for options in "" "--container-remap-root --container-writable --no-container-mount-home --container-mounts=$E2E_TMP/fe-mount:/mnt/fe" \
      "--container-mounts=$E2E_TMP/fe-mount:/etc/fe" "--container-entrypoint"; do
      # shellcheck disable=SC2086 # the options' words
      run srun_as_user --container-cache --container-image="$ALPHA" $options sh -c 'env | sort'
      echo "$output"
      [ "$status" -eq 0 ]
      printf '%s\n' "$output" | grep -v '^srun: ' >>"$dir/task.env"
    done
    [ "$(grep -c '^HOME=' "$dir/task.env")" -eq 4 ]
    [ "$(grep -c '^\[--mount\]$' "$dir/nsenter.out")" -eq 4 ]
    grep -q '^\[--remap-root\]$' "$dir/nsenter.out"
    grep -q '^\[/.*/enroot/rc\]$' "$dir/nsenter.out"
    grep -q '^ENROOT_SQUASH_OPTIONS=-comp zstd -b 1M$' "$dir/nsenter.out"
    grep -q '^ENROOT_MAX_CONNECTIONS=4$' "$dir/nsenter.out"
  done
  # enroot's front end ran on one side only.
  [ -s "$E2E_TMP/enroot-fe/readlink.ran" ]
  [ ! -s "$E2E_TMP/enroot-stub/readlink.ran" ]
  grep -q "enroot's front end: the stub's ($E2E_TMP/enroot-stub/enroot)" "$E2E_TMP/slurmd/slurmd.log"
  grep -q "enroot's front end: enroot start's: $E2E_TMP/enroot-fe/enroot: not enroot 4.1.2's front end" "$E2E_TMP/slurmd/slurmd.log"
  # enroot-nsenter's argv and environment, and the task's environment: the same but for the step's numbers
  # and the copy's directory.
  diff <(numbers_as_n "$E2E_TMP/enroot-fe/nsenter.out" | sed "s|enroot-fe|DIR|g") \
    <(numbers_as_n "$E2E_TMP/enroot-stub/nsenter.out" | sed "s|enroot-stub|DIR|g")
  diff <(numbers_as_n "$E2E_TMP/enroot-fe/task.env" | sed "s|enroot-fe|DIR|g") \
    <(numbers_as_n "$E2E_TMP/enroot-stub/task.env" | sed "s|enroot-stub|DIR|g")
}

@test "enroot: an enroot.conf value the stub cannot evaluate leaves the step to enroot start, which evaluates it" {
  local dir=$E2E_TMP/enroot-cmd conf=$E2E_TMP/cmd-etc/enroot.conf
  mkdir -p "$(dirname "$conf")"
  : >"$E2E_TMP/cmd-etc/ran"
  chmod 666 "$E2E_TMP/cmd-etc/ran"
  echo "NVIDIA_DRIVER_CAPABILITIES \$(echo ran >>$E2E_TMP/cmd-etc/ran)compute" >"$conf"
  chmod -R a+rX "$E2E_TMP/cmd-etc"
  enroot_copy "$dir" yes "$conf"
  E2E_SLURMD_PATH=$dir:$PATH slurmd_restart_with "$(plugstack_line container_cache_runtime=enroot)"
  run srun_as_user --container-cache --container-image="$ALPHA" true
  echo "$output"
  [ "$status" -eq 0 ]
  # bin/enroot's front end ran (its readlink), and so did the command in the value, once.
  [ -s "$dir/readlink.ran" ]
  [ "$(cat "$E2E_TMP/cmd-etc/ran")" = ran ]
  grep -q "enroot's front end: enroot start's: $conf: a line the stub does not read as enroot would" "$E2E_TMP/slurmd/slurmd.log"
}
