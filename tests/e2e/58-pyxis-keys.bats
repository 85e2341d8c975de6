# pyxis 0.24's own plugstack keys on the plugin's line (docs/pyxis.md, "plugstack
# keys"): a site's pyxis line keeps working; execute_entrypoint sets the default of
# --container-entrypoint; sbatch_support puts the options in sbatch and salloc (the
# batch script runs in the container); a non-empty importer is refused by name. Run
# once per runtime (run.sh: E2E_RUNTIME=bwrap, then enroot). srun, sbatch and salloc
# read $E2E_TMP/plugstack.conf, slurmd its own copy: each case sets both.
load helpers

RUNTIME=${E2E_RUNTIME:-bwrap}

# Every pyxis key, with pyxis's spellings (values that change nothing here but
# execute_entrypoint's and sbatch_support's).
PYXIS_KEYS="runtime_path=/run/pyxis container_scope=job use_enroot_load=1 importer= use_squashfuse=1"

# slurmd's spool, where the batch script is, outside /tmp for this file (bwrap's /tmp is a
# tmpfs, which would hide where the script's mount point is made): as a site's /var/spool/slurmd.
SPOOL=/var/spool/pxc-e2e-spool.${E2E_TMP##*.}

setup_file() {
  runtime_available || return 0
  # The entrypoint exports PXC_FROM_ENTRYPOINT=yes.
  entrypoint_image keys <<'EOF'
#!/bin/sh
export PXC_FROM_ENTRYPOINT=yes
exec "$@"
EOF
  warm_entry "$ALPHA"
  mkdir -p "$SPOOL"
  sed -i "s|^SlurmdSpoolDir=.*|SlurmdSpoolDir=$SPOOL|" "$E2E_TMP/slurmd/slurm.conf"
  runtime_setup_file
}

teardown_file() {
  runtime_available || return 0
  write_plugstack "$E2E_TMP/plugstack.conf"
  sed -i "s|^SlurmdSpoolDir=.*|SlurmdSpoolDir=$E2E_TMP/slurmd/spool|" "$E2E_TMP/slurmd/slurm.conf"
  slurmd_restart_with
  rm -rf "$SPOOL"
}

setup() {
  skip_without_runtime
  IMG=$E2E_TMP/images/keys-$RUNTIME.sqsh
}

# use_keys KEY=VALUE...: our line with these keys (and this file's runtime), for
# srun/sbatch/salloc and for slurmd (restarted only when its line changes).
use_keys() {
  local line
  line=$(plugstack_line "container_cache_runtime=$RUNTIME" "$@")
  write_plugstack "$E2E_TMP/plugstack.conf" "$line"
  [[ $(cat "$E2E_TMP/slurmd/plugstack.conf") == "$line" ]] || slurmd_restart_with "$line"
}

# in_mode MODE ARGS...: srun as the user, in cache mode (MODE "cache") or out of it ("plain").
in_mode() {
  local mode=$1
  shift
  if [[ $mode == cache ]]; then srun_as_user --container-cache "$@"; else srun_as_user "$@"; fi
}

# batch_script FILE LINE...: an sbatch script whose #SBATCH lines are LINE..., which
# prints the image's name, the uid and the directory it runs in, and which file it is.
batch_script() {
  local file=$1 line
  shift
  runuser -u "$E2E_USER" -- mkdir -p "$E2E_WORK"
  {
    echo '#!/bin/sh'
    for line in "$@"; do echo "#SBATCH $line"; done
    # shellcheck disable=SC2016
    echo 'grep PRETTY_NAME /etc/os-release; echo "uid=$(id -u) pwd=$(pwd) script=$0"'
  } >"$file"
  chown "$E2E_USER" "$file"
  chmod 755 "$file"
}

@test "$RUNTIME: pyxis-keys: a pyxis line with every pyxis key is accepted: steps run in cache mode and out of it, and the command reads the line" {
  use_keys $PYXIS_KEYS execute_entrypoint=0 sbatch_support=1
  local mode
  for mode in cache plain; do
    run in_mode "$mode" --container-image="$ALPHA" grep PRETTY_NAME /etc/os-release
    echo "$mode: $output"
    [ "$status" -eq 0 ]
    grep -qx 'PRETTY_NAME="pyxis-cache e2e alpha"' <<<"$output"
  done
  # container_scope is where a named container lives (job: removed by the job's epilog; tests/e2e/59-named.bats).
  run srun_as_user --container-cache --container-image="$ALPHA" --container-name=pxc-named true
  echo "$output"
  [ "$status" -eq 0 ]
  run "$E2E_CLI" status --plugstack "$E2E_TMP/slurmd/plugstack.conf"
  echo "$output"
  [ "$status" -eq 0 ]
  # A step without a container, as ever.
  run srun_as_user true
  [ "$status" -eq 0 ]
}

@test "$RUNTIME: pyxis-keys: execute_entrypoint=1 runs the image's entrypoint by default; --no-container-entrypoint and PYXIS_CONTAINER_ENTRYPOINT=0 still turn it off" {
  use_keys $PYXIS_KEYS execute_entrypoint=1 sbatch_support=1
  local mode
  for mode in cache plain; do
    run in_mode "$mode" --container-image="$IMG" sh -c 'echo "from=${PXC_FROM_ENTRYPOINT-none}"'
    echo "$mode default: $output"
    [ "$status" -eq 0 ]
    grep -qx from=yes <<<"$output"
    run in_mode "$mode" --container-image="$IMG" --no-container-entrypoint sh -c 'echo "from=${PXC_FROM_ENTRYPOINT-none}"'
    echo "$mode --no-container-entrypoint: $output"
    [ "$status" -eq 0 ]
    grep -qx from=none <<<"$output"
    E2E_ENV=PYXIS_CONTAINER_ENTRYPOINT=0 run in_mode "$mode" --container-image="$IMG" \
      sh -c 'echo "from=${PXC_FROM_ENTRYPOINT-none}"'
    echo "$mode PYXIS_CONTAINER_ENTRYPOINT=0: $output"
    [ "$status" -eq 0 ]
    grep -qx from=none <<<"$output"
  done
  # Without the key (pyxis's default, off), the same step does not run it.
  use_keys $PYXIS_KEYS sbatch_support=1
  run srun_as_user --container-cache --container-image="$IMG" sh -c 'echo "from=${PXC_FROM_ENTRYPOINT-none}"'
  echo "default line: $output"
  [ "$status" -eq 0 ]
  grep -qx from=none <<<"$output"
}

@test "$RUNTIME: pyxis-keys: sbatch_support (pyxis's default): #SBATCH --container-image runs the batch script in the image, in cache mode (warm and cold) and out of it" {
  use_keys $PYXIS_KEYS
  local mode out=$E2E_WORK/batch.out cold
  cold=$(fresh_image "keys-batch-cold-$RUNTIME")
  for mode in cache cold plain; do
    case $mode in
      cache) batch_script "$E2E_WORK/batch.sh" "--container-image=$ALPHA" --container-cache ;;
      # A cold cache-mode batch script: it starts from a FUSE mount of the image while its entry is made.
      cold) batch_script "$E2E_WORK/batch.sh" "--container-image=$cold" --container-cache ;;
      plain) batch_script "$E2E_WORK/batch.sh" "--container-image=$ALPHA" ;;
    esac
    echo "echo root_fs=\$($ROOT_FS)" >>"$E2E_WORK/batch.sh"
    rm -f "$out"
    run as "$E2E_USER" sbatch --wait -o "$out" "$E2E_WORK/batch.sh"
    echo "$mode: $output"
    cat "$out"
    [ "$status" -eq 0 ]
    grep -qx 'PRETTY_NAME="pyxis-cache e2e alpha"' "$out"
    grep -qx "uid=$(user_uid) pwd=$E2E_WORK script=$SPOOL/job[0-9]*/slurm_script" "$out"
    # The cold one from its FUSE mount (an overlay, where there is FUSE), the warm one from its entry.
    case $mode in
      cache) ! grep -qx root_fs=overlay "$out" || false ;;
      cold) [[ ! -c /dev/fuse ]] || grep -qx root_fs=overlay "$out" ;;
    esac
  done
  # The script is bound under a tmpfs on slurmd's spool: no job's directory is made in the cached entry.
  local entry
  entry=$E2E_BASE/$(user_uid)/$(entry_name "$ALPHA")
  [ -d "$entry" ]
  run find "$entry" -name 'job[0-9]*'
  echo "in the entry: $output"
  [ -z "$output" ]
  # The command line's --container-image too; and the image's entrypoint with execute_entrypoint=1.
  use_keys $PYXIS_KEYS execute_entrypoint=1
  batch_script "$E2E_WORK/batch.sh"
  echo 'echo "from=${PXC_FROM_ENTRYPOINT-none}"' >>"$E2E_WORK/batch.sh"
  rm -f "$out"
  run as "$E2E_USER" sbatch --wait -o "$out" --container-cache --container-image="$IMG" "$E2E_WORK/batch.sh"
  cat "$out"
  [ "$status" -eq 0 ]
  grep -qx 'PRETTY_NAME="pyxis-cache e2e alpha"' "$out"
  grep -qx from=yes "$out"
  assert_node_idle
}

@test "$RUNTIME: pyxis-keys: a batch script whose container fails fails the job with the message, and the node stays idle" {
  use_keys $PYXIS_KEYS
  batch_script "$E2E_WORK/batch.sh" "--container-image=$E2E_TMP/images/missing.sqsh" --container-cache
  rm -f "$E2E_WORK/batch.out"
  run as "$E2E_USER" sbatch --wait -o "$E2E_WORK/batch.out" "$E2E_WORK/batch.sh"
  echo "$output"
  cat "$E2E_WORK/batch.out"
  [ "$status" -ne 0 ]
  grep -q "pyxis-cache:.*missing.sqsh" "$E2E_WORK/batch.out"
  ! grep -q PRETTY_NAME "$E2E_WORK/batch.out" || false
  # A bad option is refused by sbatch itself, before the job exists.
  run as "$E2E_USER" sbatch --container-image="$ALPHA" --container-mounts=nfs:/data --wrap true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *'pyxis-cache: mount source must be a relative path, an absolute path, "tmpfs" or "umount"'* ]]
  assert_node_idle
}

@test "$RUNTIME: pyxis-keys: salloc --container-image: the allocation's steps run in the image" {
  use_keys $PYXIS_KEYS
  run as "$E2E_USER" salloc --container-image="$ALPHA" --container-cache srun grep PRETTY_NAME /etc/os-release
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qx 'PRETTY_NAME="pyxis-cache e2e alpha"' <<<"$output"
  # The allocation's options reach srun through the environment: the same image again is fine, another one is
  # refused before the step starts, as pyxis refuses it.
  run as "$E2E_USER" salloc --container-image="$ALPHA" srun --container-image="$ALPHA" grep PRETTY_NAME /etc/os-release
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qx 'PRETTY_NAME="pyxis-cache e2e alpha"' <<<"$output"
  run as "$E2E_USER" salloc --container-image="$ALPHA" srun --container-image="$IMG" true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: --container-image specified multiple times"* ]]
  assert_node_idle
}

@test "$RUNTIME: pyxis-keys: salloc's interactive step (LaunchParameters=use_interactive_step) runs in the image" {
  use_keys $PYXIS_KEYS
  # salloc reads these from the client's slurm.conf: its interactive step prints the image's name.
  local conf=$E2E_TMP/slurm-interactive.conf
  grep -v '^LaunchParameters=\|^InteractiveStepOptions=' "$E2E_TMP/slurm.conf" >"$conf"
  printf '%s\n' LaunchParameters=use_interactive_step \
    'InteractiveStepOptions="--interactive --preserve-env cat /etc/os-release"' >>"$conf"
  chmod 644 "$conf"
  E2E_ENV="SLURM_CONF=$conf" run as "$E2E_USER" salloc --container-image="$ALPHA" --container-cache
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qx 'PRETTY_NAME="pyxis-cache e2e alpha"' <<<"$output"
  # With sbatch_support=0 it runs outside, as the batch script does, whatever the environment says.
  use_keys $PYXIS_KEYS sbatch_support=0
  E2E_ENV="SLURM_CONF=$conf PYXIS_CONTAINER_IMAGE=$ALPHA" run as "$E2E_USER" salloc
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qx "$(grep PRETTY_NAME /etc/os-release)" <<<"$output"
  assert_node_idle
}

@test "$RUNTIME: pyxis-keys: sbatch_support=0: sbatch and salloc do not know the options, and the batch script runs outside the container" {
  use_keys $PYXIS_KEYS sbatch_support=0
  batch_script "$E2E_WORK/batch.sh" "--container-image=$ALPHA"
  rm -f "$E2E_WORK/batch.out"
  run as "$E2E_USER" sbatch --wait -o "$E2E_WORK/batch.out" "$E2E_WORK/batch.sh"
  echo "#SBATCH: $output"
  cat "$E2E_WORK/batch.out" || true
  [ "$status" -ne 0 ]
  [[ $output == *"sbatch: unrecognized option '--container-image=$ALPHA'"* ]]
  run as "$E2E_USER" salloc --container-image="$ALPHA" true
  echo "salloc: $output"
  [ "$status" -ne 0 ]
  [[ $output == *"salloc: unrecognized option '--container-image=$ALPHA'"* ]]
  # The variable in the job's environment: the batch script outside, its srun steps inside.
  batch_script "$E2E_WORK/batch.sh"
  echo 'srun grep PRETTY_NAME /etc/os-release' >>"$E2E_WORK/batch.sh"
  rm -f "$E2E_WORK/batch.out"
  E2E_ENV="PYXIS_CONTAINER_IMAGE=$ALPHA" run as "$E2E_USER" sbatch --wait -o "$E2E_WORK/batch.out" "$E2E_WORK/batch.sh"
  cat "$E2E_WORK/batch.out"
  [ "$status" -eq 0 ]
  [ "$(grep -c PRETTY_NAME "$E2E_WORK/batch.out")" -eq 2 ]
  [ "$(grep -c 'PRETTY_NAME="pyxis-cache e2e alpha"' "$E2E_WORK/batch.out")" -eq 1 ]
  [ "$(sed -n 1p "$E2E_WORK/batch.out")" = "$(grep PRETTY_NAME /etc/os-release)" ]
  assert_node_idle
}

@test "$RUNTIME: pyxis-keys: importer=PATH is refused by name, in srun and in slurmstepd; a step without a container runs" {
  local importer=/usr/share/pyxis/importers/caching_importer.sh
  use_keys $PYXIS_KEYS "importer=$importer"
  run srun_as_user --container-image="$ALPHA" true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: importer: invalid value: $importer (pyxis's importers are not supported"* ]]
  run srun_as_user true
  [ "$status" -eq 0 ]
  # sbatch alike: refused before submission when the job asks for a container, and only then.
  run as "$E2E_USER" sbatch --container-image="$ALPHA" --wrap true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: importer: invalid value: $importer"* ]]
  run as "$E2E_USER" sbatch --wait -o /dev/null --wrap true
  echo "$output"
  [ "$status" -eq 0 ]
  # slurmd's line alone: the step fails in slurmstepd, with the same message.
  write_plugstack "$E2E_TMP/plugstack.conf" "$(plugstack_line "container_cache_runtime=$RUNTIME")"
  run srun_as_user --container-cache --container-image="$ALPHA" true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: importer: invalid value: $importer"* ]]
  run "$E2E_CLI" status --plugstack "$E2E_TMP/slurmd/plugstack.conf"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ $output == *"importer: invalid value: $importer"* ]]
  assert_node_idle
}
