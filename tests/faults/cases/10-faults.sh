# shellcheck shell=bash
# Faults: SIGKILLed unpacks and evictions, full filesystems, stale and dead locks,
# entries that cannot be read or deleted.
CASES+=" kill_reuse no_space no_inodes kill_gc stale_locks unreadable_entries undeletable_entries"

# SIGKILL `reuse` 20 times (up to 40 until 8 landed mid-unpack): every other kill at a random point of the whole call, the
# others soon after its unpack has begun (stopped the moment its temporary directory appears, so
# that these land mid-unpack on any machine). Times are scaled to a cold reuse as timed on
# this machine, so that the kills land on a fast one too; a kill counts as mid-unpack
# when it left the unpack's temporary directory behind.
case_kill_reuse() {
  newbase 512m
  local i pid hit=0 mid=0 tries=0 dir=$BASE/$U1 cold before
  cold=$(seconds as1 "$PC" reuse --image "$IMG/big.sqfs" --no-plugstack --set "container_cache_data_path=$BASE")
  pc gc --all --stale-after 100000 >/dev/null 2>&1
  echo "    a cold reuse takes ${cold}s here" >&2
  # 20 kills, and more (up to 40) until enough of them landed: a loaded machine moves the windows.
  for i in $(seq 40); do
    ((i <= 20 || hit < 10 || mid < 8)) || break
    tries=$i
    before=$(temps "$dir")
    # Not through as1: $! would be the subshell running the function, and the kill would miss reuse.
    setpriv --reuid="$U1" --regid="$G1" --init-groups -- \
      "$PC" reuse --image "$IMG/big.sqfs" --no-plugstack --set "container_cache_data_path=$BASE" >/dev/null 2>&1 &
    pid=$!
    if ((i % 2)); then
      sleep "$(randdelay 0.02 "$(scale "$cold" 0.9)")"
    else
      until [[ -n $(comm -13 <(echo "$before") <(temps "$dir")) ]] || ! kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
      # Stopped the moment its temporary directory is seen, reuse cannot publish the entry before the
      # kill however slow this machine is, while its unsquashfs goes on until the kill takes it along.
      kill -STOP "$pid" 2>/dev/null
      sleep "$(randdelay 0 "$(scale "$cold" 0.03)")"
    fi
    # A kill that came too late narrows the window: timings vary from run to run.
    if kill -9 "$pid" 2>/dev/null; then hit=$((hit + 1)); else cold=$(scale "$cold" 0.8); fi
    wait "$pid" 2>/dev/null
    # A kill that landed before the entry appeared leaves its temporary directory: nobody renames it now.
    if [[ -n $(comm -13 <(echo "$before") <(temps "$dir")) ]]; then mid=$((mid + 1)); fi
    # The kernel kills its unsquashfs with it (parent-death signal): none may go on unpacking.
    wait_unsquashfs 5 || fail "kill $i: an orphaned unsquashfs still ran 5 s after reuse was killed"
    complete_entries "$dir" big
    # A completed unpack is evicted, so that the next kill lands in an unpack again.
    pc gc --all --stale-after 100000 >/dev/null 2>&1
  done
  faults=$((faults + hit))
  echo "    $hit of $tries kills landed during a reuse, $mid of them with an unpack under way" >&2
  ((hit >= 10)) || fail "only $hit kills landed in a running reuse"
  ((mid >= 8)) || fail "only $mid kills landed while an unpack was under way"
  local out
  out=$(as1 "$PC" reuse --image "$IMG/big.sqfs" --no-plugstack --set "container_cache_data_path=$BASE" --json 2>"$WORK/err") ||
    { fail "reuse after the kills failed: $(cat "$WORK/err"); $(df -h "$BASE" | tail -1)"; return; }
  local path
  path=$(jq -r .path <<<"$out")
  [[ $(manifest "$path") == "$(img_manifest big)" ]] || lose "the entry after the kills is not the image's tree"
  pc gc --stale-after 0 >/dev/null 2>"$WORK/err" || fail "gc after the kills failed: $(cat "$WORK/err")"
  (($(leftovers) == 0)) || fail "gc left $(leftovers) temporary directories behind"
  [[ -d $path ]] || lose "gc evicted the live entry"
}

# The cache filesystem fills up during an unpack.
case_no_space() {
  newbase 48m
  GC_HIGH=98 GC_LOW=97
  local x path out
  for x in a b c d; do
    pc reuse --image "$IMG/ten$x.sqfs" --uid "$U1" >/dev/null || fail "reuse ten$x failed"
    sleep 0.05
  done
  # The oldest entry is in use: it must survive everything below.
  path=$BASE/$U1/$(pckey --image "$IMG/tena.sqfs" --uid "$U1")
  hold -s "$path/.pyxis_cache_lock"
  faults=$((faults + 1))
  out=$(pc reuse --image "$IMG/thirty.sqfs" --uid "$U1" --json 2>"$WORK/err") ||
    fail "reuse of a 26 MiB image on a full 48 MiB filesystem did not make room: $(cat "$WORK/err")"
  [[ -n $out && $(manifest "$(jq -r .path <<<"$out")") == "$(img_manifest thirty)" ]] ||
    lose "the entry created after collecting is not the image's tree"
  [[ $(manifest "$path") == "$(img_manifest tena)" ]] || lose "the entry in use was evicted or damaged"
  (($(leftovers) == 0)) || fail "temporary directories left behind: $(leftovers)"
  # An image that cannot fit at all: one line saying so, nothing left behind.
  faults=$((faults + 1))
  if pc reuse --image "$IMG/huge.sqfs" --uid "$U1" >/dev/null 2>"$WORK/err"; then
    fail "reuse of a 70 MiB image on a 48 MiB filesystem succeeded"
  else
    one_line_error "$WORK/err" "no space"
  fi
  local huge
  huge=$(pckey --image "$IMG/huge.sqfs" --uid "$U1")
  [[ ! -e $BASE/$U1/$huge ]] || lose "a partial entry is visible"
  (($(leftovers) == 0)) || fail "temporary directories left behind after no space: $(leftovers)"
  # The failed create's lock file is litter the collector clears, not kept for ever.
  [[ -f $BASE/$U1/.pyxis_cache_create.$huge ]] || fail "the failed create left no creation lock (nothing to collect)"
  pc gc --stale-after 0 >/dev/null 2>"$WORK/err" || fail "gc after no space: $(cat "$WORK/err")"
  [[ ! -e $BASE/$U1/.pyxis_cache_create.$huge ]] || fail "gc kept the creation lock of the failed create"
  [[ -e $BASE/$U1/.pyxis_cache_create.$(pckey --image "$IMG/tena.sqfs" --uid "$U1") ]] ||
    fail "gc removed the creation lock of an entry that exists"
  [[ $(manifest "$path") == "$(img_manifest tena)" ]] || lose "the entry in use was evicted or damaged"
  kill_holder
  unset GC_HIGH GC_LOW
}

# Out of inodes on ext4: the same "no space", nothing left behind.
case_no_inodes() {
  newbase ext4 64m 256
  faults=$((faults + 1))
  if pc reuse --image "$IMG/inodes.sqfs" --uid "$U1" >/dev/null 2>"$WORK/err"; then
    fail "reuse of a 600-file image on a 256-inode filesystem succeeded"
  else
    one_line_error "$WORK/err" "no space"
  fi
  (($(leftovers) == 0)) || fail "temporary directories left behind: $(leftovers)"
  [[ -z $(find "$BASE/$U1" -maxdepth 1 -name 'pyxis_cache_u*') ]] || lose "a partial entry is visible"
  pc reuse --image "$IMG/small.sqfs" --uid "$U1" >/dev/null 2>"$WORK/err" ||
    fail "a small image no longer fits after the failure: $(cat "$WORK/err")"
}

# gc SIGKILLed mid-eviction: no half-deleted tree under a live name; the next gc finishes.
case_kill_gc() {
  newbase 512m
  local round i pid name hit=0 mid=0 tries=0 full
  # Time one whole gc of the six entries, then kill later ones 40–85 % of the way through (odd rounds),
  # or as soon as an eviction is seen under way (even rounds: its trash directory exists).
  for i in 1 2 3 4 5 6; do pc reuse --image "$IMG/many$i.sqfs" --uid "$U1" >/dev/null || fail "reuse many$i"; done
  full=$(seconds "$PC" gc --all --stale-after 100000 --no-plugstack --set "container_cache_data_path=$BASE")
  echo "    a gc of six entries takes ${full}s here" >&2
  # 8 rounds, and more (up to 20) until enough kills landed: a loaded machine moves the windows.
  for round in $(seq 20); do
    ((round <= 8 || hit < 4 || mid < 3)) || break
    tries=$round
    for i in 1 2 3 4 5 6; do pc reuse --image "$IMG/many$i.sqfs" --uid "$U1" >/dev/null || fail "reuse many$i"; done
    "$PC" gc --all --stale-after 100000 --no-plugstack --set "container_cache_data_path=$BASE" >/dev/null 2>&1 &
    pid=$!
    if ((round % 2)); then
      sleep "$(randdelay "$(scale "$full" 0.4)" "$(scale "$full" 0.85)")"
    else
      until [[ -n $(trash_dirs) ]] || ! kill -0 "$pid" 2>/dev/null; do sleep 0.005; done
    fi
    # Stopped first, so that what is seen is what the kill interrupts: an eviction under way or not.
    kill -STOP "$pid" 2>/dev/null
    local evicting
    evicting=$(trash_dirs)
    if kill -9 "$pid" 2>/dev/null; then
      hit=$((hit + 1))
      [[ -n $evicting ]] && mid=$((mid + 1))
    else
      full=$(scale "$full" 0.8)
    fi
    wait "$pid" 2>/dev/null
    for i in 1 2 3 4 5 6; do
      name=$(pckey --image "$IMG/many$i.sqfs" --uid "$U1")
      if [[ -e $BASE/$U1/$name && $(manifest "$BASE/$U1/$name") != "$(img_manifest "many$i")" ]]; then
        lose "half-deleted tree under the live name $name"
      fi
    done
    pc gc --stale-after 100000 >/dev/null 2>"$WORK/err" || fail "gc after a killed gc failed: $(cat "$WORK/err")"
    (($(leftovers) == 0)) || fail "the next gc left $(leftovers) trash directories"
  done
  faults=$((faults + hit))
  echo "    $hit of $tries kills landed during a gc, $mid of them with an eviction under way" >&2
  ((hit >= 4)) || fail "only $hit kills landed in a running gc"
  ((mid >= 3)) || fail "only $mid kills landed while an entry was being evicted"
}

trash_dirs() { find "$BASE/$U1" -mindepth 1 -maxdepth 1 -name '.pyxis_cache_trash.*' -print -quit; }

# Stale lock files and locks held by dead processes.
case_stale_locks() {
  newbase 128m
  local out path
  faults=$((faults + 6))
  # The collector lock: present and free, held by a dead process, held by a live one.
  out=$(pc gc --json) && [[ $(jq .skipped <<<"$out") == false ]] || fail "gc with a stale collector lock file"
  hold "$BASE/pyxis-container-cache-gc.lock"
  out=$(pc gc --json) && [[ $(jq .skipped <<<"$out") == true ]] || fail "a second collector did not skip"
  kill_holder
  out=$(pc gc --json) && [[ $(jq .skipped <<<"$out") == false ]] || fail "gc after the collector holder died"
  # The creation lock: left behind, and held by a process that then died.
  local name create
  name=$(pckey --image "$IMG/small.sqfs" --uid "$U1")
  create=$BASE/$U1/.pyxis_cache_create.$name
  as1 touch "$create"
  hold "$create" as1
  kill_holder
  timeout 30 "$PC" reuse --image "$IMG/small.sqfs" --uid "$U1" --no-plugstack \
    --set "container_cache_data_path=$BASE" >/dev/null 2>"$WORK/err" ||
    fail "reuse after a dead creator: $(cat "$WORK/err")"
  path=$BASE/$U1/$name
  # The in-use lock: held by a dead step, then by a live one.
  hold -s "$path/.pyxis_cache_lock" as1
  out=$(pc gc --all --json) || fail "gc --all with an entry in use"
  [[ $(jq '.skippedInUse | length' <<<"$out") == 1 && -d $path ]] || lose "gc evicted an entry in use"
  kill_holder
  out=$(pc gc --all --json) || fail "gc --all after the step died"
  [[ $(jq '.evicted | length' <<<"$out") == 1 && ! -e $path ]] || fail "the entry of a dead step was not evicted"
}

# An entry the user made unreadable (mode 000), and read-only subdirectories.
case_unreadable_entries() {
  newbase 128m
  local p1 p2 out
  p1=$(as1 "$PC" reuse --image "$IMG/small.sqfs" --no-plugstack --set "container_cache_data_path=$BASE") || fail reuse
  p2=$(as1 "$PC" reuse --image "$IMG/many1.sqfs" --no-plugstack --set "container_cache_data_path=$BASE") || fail reuse
  as1 chmod 000 "$p1"
  as1 chmod -R a-w "$p2"
  faults=$((faults + 2))
  out=$(pc status --json 2>"$WORK/err") || fail "status with a mode 000 entry: $(cat "$WORK/err")"
  [[ $(jq '.entries | length' <<<"$out") == 2 ]] || fail "status does not list both entries: $out"
  out=$(as1 "$PC" status --json --no-plugstack --set "container_cache_data_path=$BASE" 2>"$WORK/err") ||
    fail "the user's own status with a mode 000 entry: $(cat "$WORK/err")"
  grep -q ' at ' "$WORK/err" && fail "a stack trace: $(cat "$WORK/err")"
  # The user's own collector empties read-only trees of their own.
  as1 "$PC" gc --uid "$U1" --all --no-plugstack --set "container_cache_data_path=$BASE" >/dev/null 2>"$WORK/err" ||
    fail "the user's gc of their own read-only entries: $(cat "$WORK/err")"
  [[ ! -e $p1 && ! -e $p2 ]] || fail "the user's gc left entries: $(ls -d "$p1" "$p2" 2>/dev/null)"
  (($(leftovers) == 0)) || fail "the user's gc left trash: $(leftovers)"
  # And root's collector does too.
  p1=$(as1 "$PC" reuse --image "$IMG/small.sqfs" --no-plugstack --set "container_cache_data_path=$BASE") || fail reuse
  as1 chmod 000 "$p1"
  pc gc --all >/dev/null 2>"$WORK/err" || fail "root's gc of a mode 000 entry: $(cat "$WORK/err")"
  [[ ! -e $p1 ]] && (($(leftovers) == 0)) || fail "root's gc left the mode 000 entry"
}

# Undeletable files (chattr +i) inside an entry, and an immutable entry directory.
case_undeletable_entries() {
  newbase ext4 128m
  local p1 p2 out rc
  p1=$(pc reuse --image "$IMG/many1.sqfs" --uid "$U1") || fail reuse
  p2=$(pc reuse --image "$IMG/many2.sqfs" --uid "$U1") || fail reuse
  chattr +i "$p1/usr/lib/f7" "$p2"
  faults=$((faults + 2))
  out=$(timeout 60 "$PC" gc --all --json --no-plugstack --set "container_cache_data_path=$BASE" 2>"$WORK/err")
  rc=$?
  ((rc == 1)) || fail "gc with undeletable entries exited $rc, not 1"
  grep -q 'cannot' "$WORK/err" || fail "gc did not report what it could not remove: $(cat "$WORK/err")"
  grep -qE '^\s+at |Uncaught|panicked' "$WORK/err" && fail "gc crashed: $(cat "$WORK/err")"
  [[ -n $out ]] && jq -e . <<<"$out" >/dev/null || fail "gc printed no JSON report"
  # Neither name holds a half-deleted tree: p1 moved aside whole, p2 untouched.
  [[ ! -e $p1 || $(manifest "$p1") == "$(img_manifest many1)" ]] || lose "half-deleted tree under $p1"
  [[ -d $p2 && $(manifest "$p2") == "$(img_manifest many2)" ]] || lose "the immutable entry was damaged"
  out=$(pc status --json 2>"$WORK/err") || fail "status after a failed eviction"
  chattr -R -i "$BASE"
  pc gc --all >/dev/null 2>"$WORK/err" || fail "gc once the files are deletable again: $(cat "$WORK/err")"
  [[ ! -e $p1 && ! -e $p2 ]] && (($(leftovers) == 0)) || fail "gc did not finish the job once it could"
}
