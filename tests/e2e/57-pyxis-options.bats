# pyxis 0.24's srun options and their PYXIS_CONTAINER_* variables, in cache mode
# and out of it, once per runtime: run.sh runs this file with E2E_RUNTIME=bwrap and
# again with E2E_RUNTIME=enroot (docs/pyxis.md has the table).
load helpers

RUNTIME=${E2E_RUNTIME:-bwrap}

setup_file() {
  runtime_available || return 0
  runtime_setup_file
  # The entrypoint prints a line and exports variables. Entries made before the steps:
  # the cases are warm (cold steps have 55-runtime.bats's own case). Debian-like, for
  # enroot's apt hook (10-aptfix.sh): it looks for /etc/debian_version.
  entrypoint_image entry data-in-image etc/debian_version=12.0 <<'EOF'
#!/bin/sh
echo PXC_ENTRYPOINT_RAN
export PXC_FROM_ENTRYPOINT=yes PXC_OVERRIDE=from-image PXC_SEEN_BY_ENTRYPOINT="${PXC_KEEP-unset}"
exec "$@"
EOF
  warm_entry "$ALPHA"
}

teardown_file() { runtime_teardown_file; }

setup() {
  skip_without_runtime
  IMG=$E2E_TMP/images/entry-$RUNTIME.sqsh
  DATA=$E2E_TMP/pxc-opt-data
  rm -rf "$DATA"
  mkdir -p "$DATA"
  echo host-data >"$DATA/file"
  chown -R "$E2E_USER" "$DATA"
}

# in_mode MODE ARGS...: srun as the user, in cache mode (MODE "cache") or out of it ("plain").
in_mode() {
  local mode=$1
  shift
  if [[ $mode == cache ]]; then srun_as_user --container-cache "$@"; else srun_as_user "$@"; fi
}

@test "$RUNTIME: pyxis-options: --container-mounts binds a directory, rw by default, ro with :ro, a missing mount point made; PYXIS_CONTAINER_MOUNTS alike" {
  local mode
  for mode in cache plain; do
    run in_mode "$mode" --container-image="$IMG" --container-mounts="$DATA:/data-in-image,$DATA:/pxc-new-point:ro" \
      sh -c 'cat /data-in-image/file; echo "$0" >/data-in-image/written; cat /pxc-new-point/file; touch /pxc-new-point/x' "$mode"
    echo "$mode: $output"
    [ "$status" -ne 0 ] # the touch on the ro mount
    [ "$(grep -c '^host-data$' <<<"$output")" -eq 2 ]
    [[ $output == *"Read-only file system"* ]]
    [ "$(cat "$DATA/written")" = "$mode" ]
    [ ! -e "$DATA/x" ]

    E2E_ENV="PYXIS_CONTAINER_MOUNTS=$DATA:/data-in-image:ro+nosuid" run in_mode "$mode" --container-image="$IMG" \
      sh -c 'cat /data-in-image/file; touch /data-in-image/y'
    echo "$mode env: $output"
    [ "$status" -ne 0 ]
    grep -qx host-data <<<"$output"
    [[ $output == *"Read-only file system"* ]]
    [ ! -e "$DATA/y" ]
  done
}

@test "$RUNTIME: pyxis-options: the command line's --container-mounts wins over PYXIS_CONTAINER_MOUNTS; a relative source is the job's directory's" {
  as "$E2E_USER" mkdir -p rel-src
  as "$E2E_USER" sh -c 'echo relative > rel-src/file'
  E2E_ENV="PYXIS_CONTAINER_MOUNTS=/nonexistent-pxc:/data-in-image" run srun_as_user --container-cache \
    --container-image="$IMG" --container-mounts=./rel-src:/data-in-image cat /data-in-image/file
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qx relative <<<"$output"
}

@test "$RUNTIME: pyxis-options: --container-mounts errors are pyxis's (a missing source, a bad source, a bad format, a target above /), from srun or the environment" {
  run srun_as_user --container-cache --container-image="$IMG" --container-mounts=/nonexistent-pxc:/data true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: --container-mounts: source path does not exist: /nonexistent-pxc"* ]]
  run srun_as_user --container-image="$IMG" --container-mounts=nfs:/data true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *'pyxis-cache: mount source must be a relative path, an absolute path, "tmpfs" or "umount"'* ]]
  run srun_as_user --container-cache --container-image="$IMG" --container-mounts="$DATA:data" true
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: mount target must be a relative path or an absolute path"* ]]
  # A target whose ".." climbs above the container's /: enroot's reason (pyxis's mounts.bats
  # greps for it), under bwrap too, which would bind it at /home; ".." inside it is fine.
  local target
  for target in ../home /data-in-image/../../etc; do
    run srun_as_user --container-cache --container-image="$IMG" --container-mounts="$DATA:$target" true
    echo "$output"
    [ "$status" -ne 0 ]
    [[ $output == *"pyxis-cache: --container-mounts: mount target is outside the container: $target (Invalid cross-device link)"* ]]
  done
  run srun_as_user --container-cache --container-image="$IMG" --container-mounts="$DATA:/data-in-image/../pxc-dotdot" \
    cat /pxc-dotdot/file
  [ "$status" -eq 0 ]
  [ "$output" = host-data ]
  E2E_ENV="PYXIS_CONTAINER_MOUNTS=$DATA::ro" run srun_as_user --container-cache --container-image="$IMG" true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: --container-mounts: invalid format: $DATA::ro (from PYXIS_CONTAINER_MOUNTS)"* ]]
  # Without an image the variable changes nothing (as PYXIS_CONTAINER_CACHE).
  E2E_ENV="PYXIS_CONTAINER_MOUNTS=$DATA::ro" run srun_as_user true
  [ "$status" -eq 0 ]
  assert_node_idle
}

@test "$RUNTIME: pyxis-options: a tmpfs mount" {
  local mode
  for mode in cache plain; do
    run in_mode "$mode" --container-image="$IMG" --container-mounts=tmpfs:/pxc-scratch \
      sh -c 'echo x >/pxc-scratch/f && cat /pxc-scratch/f && awk "\$5 == \"/pxc-scratch\" { print \$9 }" /proc/self/mountinfo'
    echo "$mode: $output"
    [ "$status" -eq 0 ]
    grep -qx x <<<"$output"
    grep -qx tmpfs <<<"$output"
  done
}

@test "$RUNTIME: pyxis-options: propagation flags (bwrap: set once bwrap has built the container); bwrap refuses a flag it cannot honour by name" {
  local flag
  for flag in unbindable runbindable rshared rslave; do
    run srun_as_user --container-cache --container-image="$IMG" --container-mounts="$DATA:/data-in-image:$flag+ro" \
      sh -c 'grep " /data-in-image " /proc/self/mountinfo; touch /data-in-image/x'
    echo "$flag: $output"
    [ "$status" -ne 0 ] # ro
    [[ $output == *"Read-only file system"* ]]
    case $flag in
      *unbindable) [[ $output == *" unbindable "* ]] ;;
      rshared) [[ $output == *" shared:"* ]] ;;
      rslave) [[ $output != *" shared:"* && $output != *" unbindable "* ]] ;;
    esac
  done
  if [[ $RUNTIME == bwrap ]]; then
    run srun_as_user --container-cache --container-image="$IMG" --container-mounts="$DATA:/data-in-image:noexec+ro" true
    echo "$output"
    [ "$status" -ne 0 ]
    [[ $output == *"pyxis-cache: --container-mounts: mount flag 'noexec' is not supported with container_cache_runtime=bwrap"* ]]
    assert_node_idle
  fi
  # private is what bwrap's binds are: taken by both.
  run srun_as_user --container-cache --container-image="$IMG" --container-mounts="$DATA:/data-in-image:rprivate+ro" \
    cat /data-in-image/file
  [ "$status" -eq 0 ]
  [ "$output" = host-data ]
}

@test "$RUNTIME: pyxis-options: a tmpfs's other options (huge=) and umount of a runtime's mount (the home at /root), in cache mode and out of it" {
  local mode
  for mode in cache plain; do
    run in_mode "$mode" --container-image="$IMG" --container-mounts=tmpfs:/pxc-huge:huge=within_size+size=8m+mode=1777 \
      sh -c 'awk "\$5 == \"/pxc-huge\" { print \$4, \$NF }" /proc/self/mountinfo; stat -c %a /pxc-huge'
    echo "$mode: $output"
    [ "$status" -eq 0 ]
    # The last two lines: srun may say first that the job waited for resources.
    [[ ${lines[-2]} == "/ "*huge=within_size* ]]
    [[ ${lines[-2]} == *size=8192k* ]]
    [ "${lines[-1]}" = 1777 ]
    run in_mode "$mode" --container-image="$IMG" --container-mount-home --container-remap-root \
      sh -c 'grep -c " /root " /proc/self/mountinfo'
    [ "$status" -eq 0 ]
    [ "${lines[-1]}" -ge 1 ]
    run in_mode "$mode" --container-image="$IMG" --container-mount-home --container-remap-root --container-mounts=umount:/root \
      sh -c 'grep -c " /root " /proc/self/mountinfo || true'
    echo "$mode umount: $output"
    [ "$status" -eq 0 ]
    [ "${lines[-1]}" = 0 ]
  done
  # umount of what is not a mount point: the kernel's reason, one line.
  run srun_as_user --container-cache --container-image="$IMG" --container-mounts=umount:/etc true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"/etc"* ]]
  assert_node_idle
}

@test "$RUNTIME: pyxis-options: --container-workdir and PYXIS_CONTAINER_WORKDIR set the task's directory (a relative one from the container's /, as pyxis); a missing one fails with pyxis's message" {
  local mode
  for mode in cache plain; do
    run in_mode "$mode" --container-image="$IMG" --container-workdir=/etc pwd
    echo "$output"
    [ "$status" -eq 0 ]
    [ "${lines[-1]}" = /etc ]
    # pyxis's "path escape attempt": ../ from / is /; etc from / is /etc (not the job's directory's).
    run in_mode "$mode" --container-image="$IMG" --container-workdir=../ pwd
    echo "$output"
    [ "$status" -eq 0 ]
    [ "${lines[-1]}" = / ]
    run in_mode "$mode" --container-image="$IMG" --container-workdir=etc pwd
    [ "$status" -eq 0 ]
    [ "${lines[-1]}" = /etc ]
    E2E_ENV="PYXIS_CONTAINER_WORKDIR=/data-in-image" run in_mode "$mode" --container-image="$IMG" pwd
    [ "$status" -eq 0 ]
    [ "${lines[-1]}" = /data-in-image ]
    run in_mode "$mode" --container-image="$IMG" --container-workdir=/pyxis true
    echo "$output"
    [ "$status" -ne 0 ]
    [[ $output == *"pyxis-cache: couldn't chdir to /pyxis: No such file or directory"* ]]
  done
  assert_node_idle
}

@test "$RUNTIME: pyxis-options: the home is mounted by default; --no-container-mount-home and PYXIS_CONTAINER_MOUNT_HOME=0 leave it out" {
  as "$E2E_USER" sh -c 'echo home-marker >"$HOME/pxc-home-marker"'
  local mode
  for mode in cache plain; do
    run in_mode "$mode" --container-image="$IMG" sh -c 'cat "$HOME/pxc-home-marker"'
    [ "$status" -eq 0 ]
    grep -qx home-marker <<<"$output"
    run in_mode "$mode" --container-image="$IMG" --no-container-mount-home sh -c 'cat "$HOME/pxc-home-marker"'
    echo "$output"
    [ "$status" -ne 0 ]
    E2E_ENV="PYXIS_CONTAINER_MOUNT_HOME=0" run in_mode "$mode" --container-image="$IMG" sh -c 'cat "$HOME/pxc-home-marker"'
    [ "$status" -ne 0 ]
    # The command line wins.
    E2E_ENV="PYXIS_CONTAINER_MOUNT_HOME=0" run in_mode "$mode" --container-image="$IMG" --container-mount-home \
      sh -c 'cat "$HOME/pxc-home-marker"'
    [ "$status" -eq 0 ]
  done
  run srun_as_user --container-image="$IMG" --container-mount-home --no-container-mount-home true
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: both --container-mount-home and --no-container-mount-home were specified"* ]]
}

@test "$RUNTIME: pyxis-options: --container-remap-root maps 0 to the user (uid_map '0 uid 1', HOME /root); without it the user is itself ('uid uid 1')" {
  local uid mode
  uid=$(user_uid)
  as "$E2E_USER" sh -c 'echo home-marker >"$HOME/pxc-home-marker"'
  for mode in cache plain; do
    run in_mode "$mode" --container-image="$IMG" --container-remap-root sh -c 'id -u; cat /proc/self/uid_map; echo "home=$HOME"; cat /root/pxc-home-marker'
    echo "$output"
    [ "$status" -eq 0 ]
    grep -qx 0 <<<"$output"
    grep -Eq "^ *0 +$uid +1\$" <<<"$output"
    grep -qx home=/root <<<"$output"
    grep -qx home-marker <<<"$output"
    E2E_ENV="PYXIS_CONTAINER_REMAP_ROOT=yes" run in_mode "$mode" --container-image="$IMG" id -u
    [ "$status" -eq 0 ]
    [ "${lines[-1]}" = 0 ]
    run in_mode "$mode" --container-image="$IMG" --no-container-remap-root sh -c 'id -u; cat /proc/self/uid_map'
    echo "$output"
    [ "$status" -eq 0 ]
    grep -qx "$uid" <<<"$output"
    grep -Eq "^ *$uid +$uid +1\$" <<<"$output"
  done
}

@test "$RUNTIME: pyxis-options: pyxis's seccomp filter: in the user's task (Seccomp: 2), chown and setgroups/setgid/setuid succeed without doing anything, with --container-remap-root and without" {
  local uid mode
  uid=$(user_uid)
  as "$E2E_USER" sh -c 'rm -f "$HOME/pxc-seccomp" && touch "$HOME/pxc-seccomp"'
  for mode in cache plain; do
    # As apt and dpkg as remapped root: give a file to another user, then become another user
    # (busybox su: setgroups, setgid, setuid), which the one-uid user namespace refuses.
    run in_mode "$mode" --container-image="$IMG" --container-writable --container-remap-root sh -c '
      grep "^Seccomp:" /proc/self/status
      touch /pxc-owned && chown 1:1 /pxc-owned && chgrp 2 /pxc-owned && echo chowned $(stat -c %u:%g /pxc-owned)
      echo "pxc-other:x:12345:12345::/:/bin/sh" >>/etc/passwd && echo "pxc-other:x:12345:" >>/etc/group
      su pxc-other -c "echo su ran as \$(id -u)"'
    echo "$mode remap: $output"
    [ "$status" -eq 0 ]
    grep -Eqx "Seccomp:[[:space:]]+2" <<<"$output"
    grep -qx "chowned 0:0" <<<"$output"
    grep -qx "su ran as 0" <<<"$output"
    # Without remap, read-only: the user's own file given to an unmapped uid.
    run in_mode "$mode" --container-image="$IMG" sh -c \
      'grep "^Seccomp:" /proc/self/status; chown 12345:12345 "$HOME/pxc-seccomp" && echo chowned $(stat -c %u "$HOME/pxc-seccomp")'
    echo "$mode: $output"
    [ "$status" -eq 0 ]
    grep -Eqx "Seccomp:[[:space:]]+2" <<<"$output"
    grep -qx "chowned $uid" <<<"$output"
  done
  # None outside a container, nor in root's job (its calls are real), as in pyxis.
  run srun_as_user grep "^Seccomp:" /proc/self/status
  [ "$status" -eq 0 ]
  grep -Eqx "Seccomp:[[:space:]]+0" <<<"$output"
  run srun --container-image="$IMG" grep "^Seccomp:" /proc/self/status
  echo "root: $output"
  [ "$status" -eq 0 ]
  grep -Eqx "Seccomp:[[:space:]]+0" <<<"$output"
}

@test "$RUNTIME: pyxis-options: the seccomp filter alone (spank-stub/tests/seccomp_check): the faked calls return 0 and change nothing; setfsuid(-1) still answers; other calls are refused as before" {
  [[ $RUNTIME == bwrap ]] || skip "no runtime involved: once"
  local uid check=$E2E_REPO/spank-stub/tests/seccomp_check
  uid=$(user_uid)
  # Without the filter, as the user, each call is refused: what the filter changes.
  run as "$E2E_USER" "$check" "$DATA/file" none
  echo "$output"
  [ "$status" -eq 0 ]
  for call in chown lchown setgroups setresgid setresuid setuid; do grep -qx "$call rc=-1 errno=1" <<<"$output"; done
  grep -qx "setfsuid rc=$uid errno=0" <<<"$output"
  run as "$E2E_USER" "$check" "$DATA/file"
  echo "$output"
  [ "$status" -eq 0 ]
  for call in chown lchown setgroups setresgid setresuid setuid setfsuid; do grep -qx "$call rc=0 errno=0" <<<"$output"; done
  grep -qx "setfsuid-query rc=$uid errno=0" <<<"$output"
  grep -qx "setfsgid-query rc=$(user_gid) errno=0" <<<"$output"
  grep -qx "chmod-root rc=-1 errno=1" <<<"$output"
  grep -qx "file $uid:0" <<<"$output"
  grep -qx "ids $uid $(user_gid) fsuid $uid" <<<"$output"
}

@test "$RUNTIME: pyxis-options: the image's entrypoint runs only with --container-entrypoint (or PYXIS_CONTAINER_ENTRYPOINT); its output with --container-entrypoint-log" {
  local mode
  for mode in cache plain; do
    run in_mode "$mode" --container-image="$IMG" sh -c 'echo "from=${PXC_FROM_ENTRYPOINT-none}"'
    echo "$mode default: $output"
    [ "$status" -eq 0 ]
    grep -qx from=none <<<"$output"
    ! grep -q PXC_ENTRYPOINT_RAN <<<"$output" || false
    run in_mode "$mode" --container-image="$IMG" --container-entrypoint sh -c 'echo "from=${PXC_FROM_ENTRYPOINT-none}"'
    echo "$mode entrypoint: $output"
    [ "$status" -eq 0 ]
    grep -qx from=yes <<<"$output"
    ! grep -q PXC_ENTRYPOINT_RAN <<<"$output" || false
    E2E_ENV="PYXIS_CONTAINER_ENTRYPOINT=1 PYXIS_CONTAINER_ENTRYPOINT_LOG=1" run in_mode "$mode" --container-image="$IMG" \
      sh -c 'echo "from=${PXC_FROM_ENTRYPOINT-none}"'
    echo "$mode env: $output"
    [ "$status" -eq 0 ]
    grep -qx from=yes <<<"$output"
    grep -q PXC_ENTRYPOINT_RAN <<<"$output"
    # The flag wins over the variable.
    E2E_ENV="PYXIS_CONTAINER_ENTRYPOINT=1" run in_mode "$mode" --container-image="$IMG" --no-container-entrypoint \
      sh -c 'echo "from=${PXC_FROM_ENTRYPOINT-none}"'
    [ "$status" -eq 0 ]
    grep -qx from=none <<<"$output"
  done
}

@test "$RUNTIME: pyxis-options: without --container-entrypoint an /etc/rc mounted into an image that has none does not run; a mount source with \${NAME} in its path is bound as written" {
  local mode lit='lit${HOME}dir'
  # alpha has no /etc/rc, so enroot is given no rc of the stub's (runtime.c,
  # image_may_have_rc), unless a mount may bring one: this one does.
  printf '#!/bin/sh\nexport PXC_MOUNTED_RC=ran\nexec "$@"\n' >"$DATA/rc"
  chmod 755 "$DATA/rc"
  # enroot fills in ${NAME} in an fstab of its mounts.d: such a mount goes in a --conf.
  mkdir "$DATA/$lit"
  echo literal >"$DATA/$lit/file"
  chown -R "$E2E_USER" "$DATA"
  for mode in cache plain; do
    # What the rc exports would reach the task (as an entrypoint's does).
    run in_mode "$mode" --container-image="$ALPHA" --container-mounts="$DATA/rc:/etc/rc:ro" \
      sh -c 'echo "rc=${PXC_MOUNTED_RC-none}"'
    echo "$mode rc: $output"
    [ "$status" -eq 0 ]
    grep -qx rc=none <<<"$output"
    run in_mode "$mode" --container-image="$ALPHA" --container-mounts="$DATA/$lit:/pxc-literal" cat /pxc-literal/file
    echo "$mode literal: $output"
    [ "$status" -eq 0 ]
    grep -qx literal <<<"$output"
  done
}

@test "$RUNTIME: pyxis-options: --container-env keeps the job's value over the image's, and the entrypoint sees it; PYXIS_CONTAINER_ENV alike; a name the job leaves unset keeps the image's" {
  local mode job_env
  for mode in cache plain; do
    E2E_ENV="PXC_OVERRIDE=from-job PXC_KEEP=kept" run in_mode "$mode" --container-image="$IMG" --container-entrypoint \
      sh -c 'echo "override=$PXC_OVERRIDE seen=$PXC_SEEN_BY_ENTRYPOINT"'
    echo "$mode: $output"
    [ "$status" -eq 0 ]
    grep -qx "override=from-image seen=unset" <<<"$output"
    E2E_ENV="PXC_OVERRIDE=from-job PXC_KEEP=kept" run in_mode "$mode" --container-image="$IMG" --container-entrypoint \
      --container-env=PXC_OVERRIDE,PXC_KEEP sh -c 'echo "override=$PXC_OVERRIDE seen=$PXC_SEEN_BY_ENTRYPOINT"'
    echo "$mode: $output"
    [ "$status" -eq 0 ]
    grep -qx "override=from-job seen=kept" <<<"$output"
    E2E_ENV="PXC_OVERRIDE=from-job PYXIS_CONTAINER_ENV=PXC_OVERRIDE" run in_mode "$mode" --container-image="$IMG" \
      --container-entrypoint sh -c 'echo "override=$PXC_OVERRIDE"'
    [ "$status" -eq 0 ]
    grep -qx "override=from-job" <<<"$output"
    # A listed name the job does not set (or sets empty) keeps the image's value, as in
    # pyxis (env.bats, "--container-env overriding container variable").
    for job_env in "" "PXC_OVERRIDE="; do
      E2E_ENV=$job_env run in_mode "$mode" --container-image="$IMG" --container-entrypoint --container-env=PXC_OVERRIDE \
        sh -c 'echo "override=${PXC_OVERRIDE-unset}"'
      echo "$mode, '$job_env': $output"
      [ "$status" -eq 0 ]
      grep -qx "override=from-image" <<<"$output"
    done
  done
  run srun_as_user --container-image="$IMG" '--container-env=A,,B' true
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: --container-env: invalid format: A,,B"* ]]
}

@test "$RUNTIME: pyxis-options: the image's environment (/etc/environment, as enroot import writes it) reaches the task, its PATH too; --container-env's job value wins" {
  # An image with an environment file as enroot reads it: blanks, comments, quotes, a bad
  # line and an ENROOT_ variable that enroot drops; a command only on the image's PATH.
  local root=$E2E_TMP/rootfs-environ-$RUNTIME mode
  rm -rf "$root"
  cp -a "$E2E_TMP/rootfs-alpha" "$root"
  mkdir -p "$root/pxc-bin"
  printf '#!/bin/sh\necho pxc-tool-ran\n' >"$root/pxc-bin/pxc-tool"
  chmod 755 "$root/pxc-bin/pxc-tool"
  printf '%s\n' "# the image's Env" 'PATH=/pxc-bin:/bin' '  PXC_IMG_VAR="a quoted value"' 'PXC_IMG_PLAIN=plain' \
    'bad-name=1' 'ENROOT_PXC=dropped' >"$root/etc/environment"
  mksquashfs "$root" "$E2E_TMP/images/environ-$RUNTIME.sqsh" -noappend -quiet -all-root -no-progress >/dev/null
  chmod 644 "$E2E_TMP/images/environ-$RUNTIME.sqsh"
  for mode in cache plain; do
    E2E_ENV="PXC_IMG_PLAIN=from-job" run in_mode "$mode" --container-image="$E2E_TMP/images/environ-$RUNTIME.sqsh" \
      sh -c 'echo "var=$PXC_IMG_VAR plain=$PXC_IMG_PLAIN enroot=${ENROOT_PXC-unset}"; pxc-tool'
    echo "$mode: $output"
    [ "$status" -eq 0 ]
    grep -qx "var=a quoted value plain=plain enroot=unset" <<<"$output"
    grep -qx pxc-tool-ran <<<"$output"
    E2E_ENV="PXC_IMG_PLAIN=from-job" run in_mode "$mode" --container-image="$E2E_TMP/images/environ-$RUNTIME.sqsh" \
      --container-env=PXC_IMG_PLAIN sh -c 'echo "plain=$PXC_IMG_PLAIN"'
    [ "$status" -eq 0 ]
    grep -qx "plain=from-job" <<<"$output"
  done
}

@test "$RUNTIME: pyxis-options: --container-writable and PYXIS_CONTAINER_WRITABLE, in cache mode (a layer of the step's own) and out of it; --container-readonly and the default read-only; both flags refused" {
  local mode
  for mode in cache plain; do
    run in_mode "$mode" --container-image="$IMG" --container-writable sh -c 'test ! -e /pxc-w && touch /pxc-w && echo wrote'
    echo "$mode: $output"
    [ "$status" -eq 0 ]
    grep -qx wrote <<<"$output"
    E2E_ENV="PYXIS_CONTAINER_WRITABLE=true" run in_mode "$mode" --container-image="$IMG" sh -c 'test ! -e /pxc-w && touch /pxc-w && echo wrote'
    [ "$status" -eq 0 ]
    grep -qx wrote <<<"$output"
    run in_mode "$mode" --container-image="$IMG" --container-readonly touch /pxc-w
    [ "$status" -ne 0 ]
    [[ $output == *"Read-only file system"* ]]
    run in_mode "$mode" --container-image="$IMG" touch /pxc-w
    [ "$status" -ne 0 ]
    [[ $output == *"Read-only file system"* ]]
  done
  # A cache-mode step runs on an overlay: the entry below, its own layer above.
  run srun_as_user --container-cache --container-image="$IMG" --container-writable sh -c "$ROOT_FS_TYPE"
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = overlay ]
  # PYXIS_CONTAINER_READONLY=1 wins over nothing, loses to the flag.
  E2E_ENV="PYXIS_CONTAINER_READONLY=1" run srun_as_user --container-cache --container-image="$IMG" --container-writable touch /pxc-w
  [ "$status" -eq 0 ]
  E2E_ENV="PYXIS_CONTAINER_READONLY=1" run srun_as_user --container-cache --container-image="$IMG" touch /pxc-w
  [ "$status" -ne 0 ]
  run srun_as_user --container-image="$IMG" --container-writable --container-readonly true
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: both --container-writable and --container-readonly were specified"* ]]
}

@test "$RUNTIME: pyxis-options: a writable cache-mode step's layer holds container_cache_layer_size, and says so when full" {
  # The default (1g) takes 8 MiB; a layer of 4m does not.
  run srun_as_user --container-cache --container-image="$IMG" --container-writable \
    sh -c 'dd if=/dev/zero of=/pxc-big bs=1024 count=8192 2>&1 && echo written'
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qx written <<<"$output"
  slurmd_restart_with "$(plugstack_line "container_cache_runtime=$RUNTIME" container_cache_layer_size=4m)"
  run srun_as_user --container-cache --container-image="$IMG" --container-writable \
    sh -c 'dd if=/dev/zero of=/pxc-big bs=1024 count=8192 2>&1 && echo written'
  slurmd_restart_with "$(plugstack_line "container_cache_runtime=$RUNTIME")"
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"No space left on device"* ]]
  ! grep -qx written <<<"$output" || false
}

@test "$RUNTIME: pyxis-options: --container-save in cache mode saves the step's merged view as a squashfs (relative to the job's directory), as pyxis's enroot export; PYXIS_CONTAINER_SAVE alike" {
  local saved=$E2E_WORK/pxc-saved.sqsh
  rm -f "$saved" "$E2E_WORK/pxc-saved-env.sqsh"
  run srun_as_user --container-cache --container-image="$IMG" --container-writable --container-save=pxc-saved.sqsh \
    sh -c 'echo from-the-step >/pxc-saved-file; rm /etc/os-release'
  echo "$output"
  [ "$status" -eq 0 ]
  # Written as the user, complete when srun returns.
  [ "$(stat -c %U "$saved")" = "$E2E_USER" ]
  run unsquashfs -l "$saved"
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qx 'squashfs-root/pxc-saved-file' <<<"$output"
  grep -qx 'squashfs-root/data-in-image' <<<"$output"
  ! grep -q 'squashfs-root/etc/os-release$' <<<"$output" || false
  ! grep -q 'pyxis_cache_lock' <<<"$output" || false
  # The saved image runs, with what the step wrote; the entry still has what the step removed.
  run srun_as_user --container-cache --container-image="$saved" cat /pxc-saved-file
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qx from-the-step <<<"$output"
  run srun_as_user --container-cache --container-image="$IMG" sh -c 'test -e /etc/os-release && test ! -e /pxc-saved-file && echo intact'
  [ "$status" -eq 0 ]
  grep -qx intact <<<"$output"
  E2E_ENV="PYXIS_CONTAINER_SAVE=$E2E_WORK/pxc-saved-env.sqsh" run srun_as_user --container-cache --container-image="$IMG" true
  [ "$status" -eq 0 ]
  [ -f "$E2E_WORK/pxc-saved-env.sqsh" ]
}

@test "$RUNTIME: pyxis-options: --container-save over the image the step runs from (a cold step reads it through its mount as it saves): the new image is whole, the old one replaced only once it is" {
  local img=$E2E_WORK/pxc-resaved.sqsh
  rm -f "$img" "$E2E_WORK"/.pxc-resaved.sqsh.*
  as "$E2E_USER" cp "$IMG" "$img"
  # Cold: the image's first sight on the node, its entry unpacked beside the step.
  run srun_as_user --container-cache --container-image="$img" --container-writable --container-save="$img" \
    sh -c 'echo first >/pxc-resaved-1'
  echo "$output"
  [ "$status" -eq 0 ]
  run srun_as_user --container-cache --container-image="$img" --container-writable --container-save="$img" \
    sh -c 'cat /pxc-resaved-1; echo second >/pxc-resaved-2'
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qx first <<<"$output"
  run unsquashfs -l "$img"
  [ "$status" -eq 0 ]
  grep -qx 'squashfs-root/data-in-image' <<<"$output"
  grep -qx 'squashfs-root/bin/busybox' <<<"$output"
  run srun_as_user --container-cache --container-image="$img" sh -c 'cat /pxc-resaved-1 /pxc-resaved-2'
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *$'first\nsecond'* ]]
  # No temporary file left beside it.
  [ -z "$(ls -A "$E2E_WORK" | grep '^\.pxc-resaved\.sqsh\.')" ]
}

@test "$RUNTIME: pyxis-options: --container-save without cache mode saves the step's own rootfs, what the step wrote included" {
  local saved=$E2E_WORK/pxc-saved-plain.sqsh
  rm -f "$saved"
  run srun_as_user --container-image="$IMG" --container-writable --container-save="$saved" \
    sh -c 'echo from-a-plain-step >/pxc-saved-plain; rm /etc/os-release'
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$(stat -c %U "$saved")" = "$E2E_USER" ]
  run unsquashfs -l "$saved"
  [ "$status" -eq 0 ]
  grep -qx 'squashfs-root/pxc-saved-plain' <<<"$output"
  grep -qx 'squashfs-root/data-in-image' <<<"$output"
  ! grep -q 'squashfs-root/etc/os-release$' <<<"$output" || false
  run srun_as_user --container-image="$saved" cat /pxc-saved-plain
  [ "$status" -eq 0 ]
  grep -qx from-a-plain-step <<<"$output"
}

@test "$RUNTIME: pyxis-options: --container-unshare=net,ipc,uts (bwrap: separate namespaces; enroot 4.1: pyxis's error, it cannot unshare them)" {
  local host_ns
  host_ns=$(as "$E2E_USER" sh -c 'for n in net ipc uts; do readlink /proc/self/ns/$n; done' | tr '\n' ' ')
  run srun_as_user --container-cache --container-image="$IMG" --container-unshare=net,ipc,uts \
    sh -c 'for n in net ipc uts; do readlink /proc/self/ns/$n; done | tr "\n" " "; echo; cat /proc/net/dev | wc -l'
  echo "$output"
  if [[ $RUNTIME == bwrap ]]; then
    [ "$status" -eq 0 ]
    local inside
    inside=$(grep '^net:' <<<"$output")
    [[ $inside != *"$(cut -d' ' -f1 <<<"$host_ns")"* ]]
    [[ $inside != *"$(cut -d' ' -f2 <<<"$host_ns")"* ]]
    [[ $inside != *"$(cut -d' ' -f3 <<<"$host_ns")"* ]]
    [ "${lines[-1]}" -eq 3 ] # lo only
    E2E_ENV="PYXIS_CONTAINER_UNSHARE=uts" run srun_as_user --container-image="$IMG" readlink /proc/self/ns/uts
    [ "$status" -eq 0 ]
    [[ ${lines[-1]} != "$(cut -d' ' -f3 <<<"$host_ns")" ]]
  else
    [ "$status" -ne 0 ]
    [[ $output == *"pyxis-cache: error: --container-unshare=net requested but the container is not in a separate network namespace"* ]]
  fi
  run srun_as_user --container-image="$IMG" --container-unshare=pid true
  [ "$status" -ne 0 ]
  [[ $output == *"pyxis-cache: --container-unshare: unknown namespace 'pid'"* ]]
}

@test "$RUNTIME: pyxis-options: --container-unshare=uts: remapped root sets the container's hostname, the node's stays; the user without remap cannot (as with pyxis and enroot)" {
  [[ $RUNTIME == bwrap ]] || skip "enroot 4.1.2 cannot unshare (pyxis's error: the case above)"
  local host mode
  host=$(hostname)
  for mode in cache plain; do
    run in_mode "$mode" --container-image="$IMG" --container-unshare=uts --container-remap-root \
      sh -c 'hostname; hostname pxc-container && hostname'
    echo "$mode: $output"
    [ "$status" -eq 0 ]
    [ "${lines[-2]}" = "$host" ]
    [ "${lines[-1]}" = pxc-container ]
    [ "$(hostname)" = "$host" ]
    # Without remap the task is the user, with no capability in the container's user namespace:
    # pyxis's task, which joins enroot's user namespace the same way, has none either.
    run in_mode "$mode" --container-image="$IMG" --container-unshare=uts hostname pxc-container
    echo "$mode, no remap: $output"
    [ "$status" -ne 0 ]
    [ "$(hostname)" = "$host" ]
  done
  # Root's job (pyxis's: no user namespace) sets it too.
  run srun --container-image="$IMG" --container-unshare=uts sh -c 'hostname pxc-root && hostname'
  echo "root: $output"
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = pxc-root ]
  [ "$(hostname)" = "$host" ]
}

@test "$RUNTIME: pyxis-options: --container-remap-root in a Debian image: apt's sandbox user is root (enroot's apt hook), in the step's own layer, never in the entry" {
  local entry mode
  entry=$E2E_BASE/$(user_uid)/$(entry_name "$IMG")
  [ -d "$entry" ]
  for mode in cache plain; do
    run in_mode "$mode" --container-image="$IMG" --container-remap-root cat /etc/apt/apt.conf.d/enroot
    echo "$mode: $output"
    [ "$status" -eq 0 ]
    [ "${lines[-1]}" = 'APT::Sandbox::User "root";' ]
    run in_mode "$mode" --container-image="$IMG" --container-writable --container-remap-root \
      sh -c 'echo edited >>/etc/apt/apt.conf.d/enroot && echo edited'
    [ "$status" -eq 0 ]
    [ "${lines[-1]}" = edited ]
    # Without remap, or in an image that is not Debian's, there is none (as enroot's hook).
    run in_mode "$mode" --container-image="$IMG" sh -c 'test ! -e /etc/apt/apt.conf.d/enroot && echo none'
    [ "$status" -eq 0 ]
    [ "${lines[-1]}" = none ]
  done
  run srun_as_user --container-cache --container-image="$ALPHA" --container-remap-root \
    sh -c 'test ! -e /etc/apt/apt.conf.d/enroot && echo none'
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = none ]
  [ ! -e "$entry/etc/apt" ]
}

@test "$RUNTIME: pyxis-options: a registry image that cannot be imported fails the step with pyxis's words and the reason, once per node however many tasks" {
  local mode
  for mode in cache plain; do
    run in_mode "$mode" --ntasks=2 --container-image=no-such-host.invalid#pxc/app:1 true
    echo "$mode: $output"
    [ "$status" -ne 0 ]
    [ "$(grep -c 'failed to import docker image' <<<"$output")" -eq 1 ]
    grep -q 'pyxis-cache: .*failed to import docker image: no-such-host.invalid#pxc/app:1: cannot reach registry no-such-host.invalid' <<<"$output"
  done
  # Any recorded error, once per node: a missing squashfs too.
  run srun_as_user --ntasks=2 --container-cache --container-image=/nonexistent-pxc.sqsh true
  echo "$output"
  [ "$status" -ne 0 ]
  [ "$(grep -c 'nonexistent-pxc.sqsh' <<<"$output")" -eq 1 ]
  assert_node_idle
}

@test "$RUNTIME: pyxis-options: dockerd:// and podman:// images: enroot imports them from the daemon, in cache mode as a step of its own (no entry); bwrap refuses them in one line" {
  local before image
  before=$(ls -A "$E2E_BASE/$(user_uid)" | grep -c '^pyxis_cache_u' || true)
  for image in dockerd://pxc/app:1 podman://pxc/app:1; do
    run srun_as_user --ntasks=2 --container-cache --container-image="$image" true
    echo "$output"
    [ "$status" -ne 0 ]
    if [[ $RUNTIME == enroot ]]; then
      # No daemon here: enroot's own reason shows that it was asked, once.
      [ "$(grep -c "failed to import docker image: $image: enroot import $image failed" <<<"$output")" -eq 1 ]
    else
      [ "$(grep -c "pyxis-cache: --container-image: $image: not supported with container_cache_runtime=bwrap" <<<"$output")" -eq 1 ]
    fi
  done
  [ "$(ls -A "$E2E_BASE/$(user_uid)" | grep -c '^pyxis_cache_u' || true)" -eq "$before" ]
  if [[ $RUNTIME == enroot ]]; then
    run srun_as_user --container-image=dockerd://pxc/app:1 --container-name=pxc-daemon true
    echo "$output"
    [ "$status" -ne 0 ]
    [[ $output == *"pyxis-cache: --container-name: not supported with an image of a local daemon (dockerd://pxc/app:1)"* ]]
  fi
  assert_node_idle
}

# write_everywhere IMAGE GO OPTS...: a cache-mode step that writes into every directory it can
# reach, removes and changes what it can, with mount points the image lacks: the job's working
# directory and home, a --container-mounts target. GO (may be empty): a FIFO in $DATA the step
# reads a line from first.
write_everywhere() {
  local image=$1 go=$2
  shift 2
  local script='[ -z "$1" ] || read -r _ <"/data-in-image/$1"
    for d in / /etc /bin /root /tmp /home /data-in-image /pxc-new-point "$HOME" .; do
      echo x >"$d/pxc-written" 2>/dev/null && echo "wrote $d"; mkdir "$d/pxc-dir" 2>/dev/null; rm -f "$d/busybox" 2>/dev/null
    done; rm -f /bin/sh /etc/os-release /etc/passwd /etc/group 2>/dev/null; chmod 777 / /etc 2>/dev/null
    touch -d 2001-01-01 /etc/rc 2>/dev/null; true'
  srun_as_user --container-cache --container-image="$image" "$@" \
    --container-mounts="$DATA:/data-in-image,$DATA:/pxc-new-point,tmpfs:/tmp" sh -c "$script" sh "$go"
}

@test "$RUNTIME: pyxis-options: cache-mode steps that write everywhere they can, warm and cold, read-only and writable, leave the entry byte-identical" {
  local image entry before after opts mode i
  # An entry of its own, made by no step: nothing of a runtime's (mount points, enroot's files) is in it.
  image=$E2E_TMP/images/ident-$RUNTIME.sqsh
  cp "$IMG" "$image"
  chmod 644 "$image"
  warm_entry "$image"
  entry=$E2E_BASE/$(user_uid)/$(entry_name "$image")
  [ -d "$entry" ]
  # The image lacks the mount points: the home (and the working directory under it), /pxc-new-point.
  [ ! -e "$entry$E2E_HOME" ]
  [ ! -e "$entry/pxc-new-point" ]
  before=$(entry_listing "$entry")
  for mode in --container-readonly --container-writable; do
    for opts in "" "--container-remap-root" "--container-entrypoint --container-env=HOME" "--no-container-mount-home --container-workdir=/tmp"; do
      # shellcheck disable=SC2086
      run write_everywhere "$image" "" $mode $opts
      echo "$mode $opts: $output"
      [ "$status" -eq 0 ]
      grep -qx "wrote /data-in-image" <<<"$output"
      grep -qx "wrote /pxc-new-point" <<<"$output"
      if [[ $mode == --container-writable ]]; then grep -qx "wrote /" <<<"$output"; else ! grep -qx "wrote /" <<<"$output" || false; fi
    done
  done
  after=$(entry_listing "$entry")
  diff <(echo "$before") <(echo "$after")
  # The writes that could land did, outside the entry; the next step sees none of the layer's.
  [ -e "$DATA/pxc-written" ]
  run srun_as_user --container-cache --container-image="$image" sh -c 'cat /etc/os-release >/dev/null && test ! -e /pxc-written && echo clean'
  [ "$status" -eq 0 ]
  grep -qx clean <<<"$output"
  # Each step's mount point goes with it (exit runs after srun returns: waited for).
  wait_for 30 eval '! ls -A "$E2E_BASE/$(user_uid)" | grep -q "^\.pyxis_cache_mnt\."'

  # Cold: two steps (writable, read-only) start from the image's FUSE mount while the entry is
  # made; they write once it is published, and leave it as it was then.
  if command -v squashfuse_ll >/dev/null && [[ -c /dev/fuse ]]; then
    local pids=()
    image=$E2E_TMP/images/ident-cold-$RUNTIME.sqsh
    cp "$IMG" "$image"
    chmod 644 "$image"
    for mode in writable readonly; do
      mkfifo "$DATA/go-$mode"
      chown "$E2E_USER" "$DATA/go-$mode"
      # --time: a step left waiting by a failed case ends by itself.
      write_everywhere "$image" "go-$mode" "--container-$mode" --time=5 >"$DATA.$mode.out" 2>&1 3>&- &
      pids+=($!)
    done
    wait_entry "$image"
    entry=$E2E_BASE/$(user_uid)/$(entry_name "$image")
    before=$(entry_listing "$entry")
    for mode in writable readonly; do
      timeout 120 sh -c 'echo go >"$1"' sh "$DATA/go-$mode"
    done
    for i in 0 1; do wait "${pids[$i]}"; done
    cat "$DATA.writable.out" "$DATA.readonly.out"
    grep -qx "wrote /" "$DATA.writable.out"
    ! grep -qx "wrote /" "$DATA.readonly.out" || false
    grep -qx "wrote /pxc-new-point" "$DATA.readonly.out"
    grep -q "$(entry_name "$image") is being unpacked: the step starts from a FUSE mount" "$E2E_TMP/slurmd/slurmd.log"
    after=$(entry_listing "$entry")
    diff <(echo "$before") <(echo "$after")
  fi
}
