# Warm steps answered from root's record, without the command (container_cache_answers,
# spank-stub/answers.c; docs/srun.md, "Warm steps without the command"), once per
# runtime: run.sh runs this file with E2E_RUNTIME=bwrap and again with enroot.
load helpers
bats_require_minimum_version 1.5.0

RUNTIME=${E2E_RUNTIME:-bwrap}
ANSWERS=$E2E_BASE/.pyxis_cache_answers
LOG=$E2E_TMP/slurmd/slurmd.log

setup_file() { runtime_setup_file; }

teardown_file() { runtime_teardown_file; }

setup() {
  skip_without_runtime
}

cached_image() { srun_as_user --container-cache --container-image="$1" "${@:2}"; }

# srun_in DIR ARGS...: srun as the test user from DIR (its working directory).
srun_in() {
  local dir=$1
  shift
  (cd "$dir" && without_queue_lines runuser -u "$E2E_USER" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$E2E_HOME" \
    USER="$E2E_USER" LOGNAME="$E2E_USER" SLURM_CONF="$SLURM_CONF" srun "$@")
}

# settle FILE: until FILE's ctime and mtime are over a second old (a record is kept only of
# such an image: answers.c's SETTLE_NS). Waits for the clock, never for a guessed time.
settle() {
  local changed
  changed=$(stat -c '%Y %Z' "$1" | tr ' ' '\n' | sort -n | tail -1)
  while (($(date +%s) <= changed + 1)); do sleep 0.1; done
}

# log_mark: where slurmd's log ends now; since MARK WHAT: how many "at WHAT" stamps the
# steps after MARK logged (the stub's stamps, log.c's pyxis_stamp, at SlurmdDebug=debug).
log_mark() { stat -c %s "$LOG"; }
since() { tail -c +$(($1 + 1)) "$LOG" | grep -c "pyxis-cache: at $2 " || true; }

# recorded IMAGE: the test user's records whose image line is IMAGE.
recorded() { grep -lx -- "$1" "$ANSWERS/$(user_uid)".* 2>/dev/null | wc -l; }

# evict_all: a collection down to nothing (every entry no step holds goes; root's records stay).
evict_all() { cli gc --json --set container_cache_gc_high=2 --set container_cache_gc_low=1 >/dev/null; }

# answered_image NAME: an image of its own (alpha), its entry warm, settled, and recorded
# by one warm step through the command; prints its path.
answered_image() {
  local img
  img=$(fresh_image "$1")
  warm_entry "$img"
  settle "$img"
  cached_image "$img" true >/dev/null
  echo "$img"
}

@test "$RUNTIME: a warm step of a recorded image makes no call of the command, and refreshes its entry's last use" {
  local img entry mark
  img=$(answered_image ans-hit)
  [ "$(recorded "$img")" -eq 1 ]
  entry=$E2E_BASE/$(user_uid)/$(entry_name "$img")
  touch -d '2020-01-01 00:00:00' "$entry"
  mark=$(log_mark)
  run cached_image "$img" cat /etc/os-release
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *'"pyxis-cache e2e alpha"'* ]]
  [ "$(since "$mark" call)" -eq 0 ]
  [ "$(since "$mark" answered)" -eq 1 ]
  # The LRU clock moved to now (the collector would otherwise evict it first).
  (($(stat -c %Y "$entry") > $(date -d '2021-01-01' +%s)))
}

@test "$RUNTIME: an image rewritten in place (same inode) is not answered from the record" {
  local img ino mark
  img=$(answered_image ans-inplace)
  ino=$(stat -c %i "$img")
  cat "$BETA" >"$img"
  [ "$(stat -c %i "$img")" = "$ino" ]
  mark=$(log_mark)
  run cached_image "$img" cat /etc/os-release
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *'"pyxis-cache e2e beta"'* ]]
  [ "$(since "$mark" answered)" -eq 0 ]
  [ "$(since "$mark" call)" -ge 1 ]
}

@test "$RUNTIME: an image replaced by a rename is not answered from the record" {
  local img mark
  img=$(answered_image ans-renamed)
  cp "$BETA" "$img.new"
  chmod 644 "$img.new"
  mv -f "$img.new" "$img"
  mark=$(log_mark)
  run cached_image "$img" cat /etc/os-release
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *'"pyxis-cache e2e beta"'* ]]
  [ "$(since "$mark" answered)" -eq 0 ]
}

@test "$RUNTIME: an image the user can no longer open (its directory closed, the file unchanged) gets the command's error" {
  local dir=$E2E_TMP/images/ans-closed img mark
  mkdir -p "$dir"
  chmod 755 "$dir"
  cp "$ALPHA" "$dir/closed.sqsh"
  chmod 644 "$dir/closed.sqsh"
  img=$dir/closed.sqsh
  warm_entry "$img"
  settle "$img"
  cached_image "$img" true >/dev/null
  [ "$(recorded "$img")" -eq 1 ]
  # The file's own ctime does not change: only the user's way to it is gone.
  chmod 700 "$dir"
  mark=$(log_mark)
  run cached_image "$img" true
  echo "$output"
  [ "$status" -ne 0 ]
  [[ $output == *"permission denied"* || $output == *"Permission denied"* ]]
  [ "$(since "$mark" answered)" -eq 0 ]
  assert_node_idle
}

@test "$RUNTIME: an entry evicted since the record: a cold step from the image's mount without the command, and its creator makes the entry again" {
  local img entry mark
  img=$(answered_image ans-evicted)
  entry=$E2E_BASE/$(user_uid)/$(entry_name "$img")
  [ -d "$entry" ]
  evict_all
  [ ! -e "$entry" ]
  mark=$(log_mark)
  run cached_image "$img" sh -c "cat /etc/os-release; $ROOT_FS"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *'"pyxis-cache e2e alpha"'* ]]
  [ "${lines[-1]}" = overlay ]
  [ "$(since "$mark" answered_absent)" -eq 1 ]
  [ "$(since "$mark" answered)" -eq 0 ]
  [ "$(since "$mark" call)" -eq 0 ]
  tail -c +$((mark + 1)) "$LOG" | grep -q "$(entry_name "$img") is being unpacked: the step starts from a FUSE mount"
  wait_entry "$img"
  # The entry made again: the next step is warm, from the record.
  mark=$(log_mark)
  run cached_image "$img" sh -c "$ROOT_FS"
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = entry ]
  [ "$(since "$mark" answered)" -eq 1 ]
}

@test "$RUNTIME: an entry evicted since the record, replaced by a rename meanwhile: the command judges the new file" {
  local img entry mark
  img=$(answered_image ans-evicted-renamed)
  entry=$E2E_BASE/$(user_uid)/$(entry_name "$img")
  evict_all
  [ ! -e "$entry" ]
  cp "$BETA" "$img.new"
  chmod 644 "$img.new"
  mv "$img.new" "$img"
  mark=$(log_mark)
  run cached_image "$img" cat /etc/os-release
  echo "$output"
  [ "$status" -eq 0 ]
  [[ $output == *'"pyxis-cache e2e beta"'* ]]
  [ "$(since "$mark" answered_absent)" -eq 0 ]
  [ "$(since "$mark" call)" -ge 1 ]
}

@test "$RUNTIME: one relative image path in two working directories: each its own image, each its own record" {
  local d1=$E2E_HOME/ans-d1 d2=$E2E_HOME/ans-d2 mark
  runuser -u "$E2E_USER" -- mkdir -p "$d1" "$d2"
  runuser -u "$E2E_USER" -- cp "$ALPHA" "$d1/rel.sqsh"
  runuser -u "$E2E_USER" -- cp "$BETA" "$d2/rel.sqsh"
  warm_entry "$d1/rel.sqsh"
  warm_entry "$d2/rel.sqsh"
  settle "$d1/rel.sqsh"
  settle "$d2/rel.sqsh"
  # The first step in each records its answer; the second in each is answered, the right one.
  srun_in "$d1" --container-cache --container-image=rel.sqsh true
  srun_in "$d2" --container-cache --container-image=rel.sqsh true
  mark=$(log_mark)
  run srun_in "$d1" --container-cache --container-image=rel.sqsh cat /etc/os-release
  [[ $output == *'"pyxis-cache e2e alpha"'* ]]
  run srun_in "$d2" --container-cache --container-image=rel.sqsh cat /etc/os-release
  [[ $output == *'"pyxis-cache e2e beta"'* ]]
  [ "$(since "$mark" answered)" -eq 2 ]
  [ "$(since "$mark" call)" -eq 0 ]
  [ "$(recorded rel.sqsh)" -eq 2 ]
}

@test "$RUNTIME: root's records: a directory and files only root can read or write, named by a hash only" {
  local img
  img=$(answered_image ans-attack)
  # An image string full of ../ names no path of root's: its record is named by a hash.
  run cached_image "../../../../../../..$img" true
  [ "$status" -eq 0 ]
  [ "$(stat -c '%u %a' "$ANSWERS")" = "0 700" ]
  local f n=0
  for f in "$ANSWERS"/* "$ANSWERS"/.[!.]*; do
    [ -e "$f" ] || continue
    [[ ${f##*/} =~ ^[0-9]+\.[0-9a-f]{4}$ ]]
    [ "$(stat -c '%u %a %F' "$f")" = "0 600 regular file" ]
    n=$((n + 1))
  done
  ((n >= 2))
  [ "$(recorded "../../../../../../..$img")" -eq 1 ]
  run ! as "$E2E_USER" ls "$ANSWERS"
  run ! as "$E2E_USER" sh -c "echo forged > '$ANSWERS/forged'"
  [ ! -e "$ANSWERS/forged" ]
}

@test "$RUNTIME: container_cache_answers=no: every warm step calls the command" {
  local img mark
  img=$(answered_image ans-off)
  slurmd_restart_with "$(plugstack_line "container_cache_runtime=$RUNTIME" container_cache_answers=no)"
  mark=$(log_mark)
  run cached_image "$img" true
  [ "$status" -eq 0 ]
  [ "$(since "$mark" answered)" -eq 0 ]
  [ "$(since "$mark" call)" -ge 1 ]
  slurmd_restart_with "$(plugstack_line "container_cache_runtime=$RUNTIME")"
}

@test "$RUNTIME: container_cache_fuse=no: an entry evicted since the record waits for the command's unpack" {
  local img mark
  img=$(answered_image ans-nofuse)
  evict_all
  slurmd_restart_with "$(plugstack_line "container_cache_runtime=$RUNTIME" container_cache_fuse=no)"
  mark=$(log_mark)
  run cached_image "$img" sh -c "$ROOT_FS"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = entry ]
  [ "$(since "$mark" answered_absent)" -eq 1 ]
  [ "$(since "$mark" call)" -ge 1 ]
  slurmd_restart_with "$(plugstack_line "container_cache_runtime=$RUNTIME")"
}
