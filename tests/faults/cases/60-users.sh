# shellcheck shell=bash
# What one user does in their own directory against root's collector and the other users
# (issue 19, items 2 and 3). Tools: tests/faults/attack.py.
CASES+=" trash_feeder"

# 1. A user plants a trash directory and keeps feeding it ahead of root's getdents64 order
# (slot directories, each filled with 10,000 empty directories just before root lists it).
# Root's gc must stop removing it after its share of the run (--user-seconds), say so in one
# failure line, count it in the metrics, still evict, and let go of the collector lock while
# the feeder is still feeding; the next run goes on with what is left.
case_trash_feeder() {
  newbase 512m
  local d=$BASE/$U1 h=0123456789abcdef0123 trash entry fpid rc alive i lines
  entry=$(as2 "$PC" reuse --image "$IMG/small.sqfs" --no-plugstack --set "container_cache_data_path=$BASE") ||
    fail "B's reuse"
  trash=$d/.pyxis_cache_trash.pyxis_cache_u${U1}_$h.6
  as1 mkdir "$trash"
  # The feeder stops by itself after 90 s (the case's bound); gc's share of a user is 3 s here.
  # setpriv execs the feeder: its pid is $! (as1, a function, would leave it a subshell's child).
  setpriv --reuid="$U1" --regid="$G1" --init-groups -- /usr/bin/python3 "$here/attack.py" feed 90 "$trash" \
    >"$WORK/feed.out" &
  fpid=$!
  bgpids+=("$fpid")
  for ((i = 0; i < 3000; i++)); do
    grep -q feeding "$WORK/feed.out" 2>/dev/null && break
    sleep 0.01
  done
  grep -q feeding "$WORK/feed.out" || fail "the feeder never started"
  attacks=$((attacks + 1))
  pc gc --all --user-seconds 3 --json --prometheus "$WORK/gc.prom" >"$WORK/out" 2>"$WORK/err"
  rc=$?
  alive=0
  kill -0 "$fpid" 2>/dev/null && alive=1
  kill "$fpid" 2>/dev/null
  wait "$fpid" 2>/dev/null
  echo "    feeder: $(tail -n 1 "$WORK/feed.out"); gc exit $rc" >&2
  ((alive)) || fail "gc ended only when the feeder stopped: the feeder held root's collector (and its lock)"
  ((rc == 1)) || fail "gc exited $rc, not 1 for the trash it could not remove: $(head -c 300 "$WORK/err")"
  lines=$(grep -c . "$WORK/err")
  ((lines == 1)) || fail "expected one failure line, got $lines: $(head -c 600 "$WORK/err")"
  grep -q "$trash: not removed within the 3 s uid $U1's directory may take of a run" "$WORK/err" ||
    fail "the failure line does not name the trash and the bound: $(head -c 300 "$WORK/err")"
  [[ $(jq '.failures | length' "$WORK/out") == 1 ]] || fail "the JSON does not have one failure"
  grep -qx "pyxis_cache_gc_failures_total{base=\"$BASE\"} 1" "$WORK/gc.prom" ||
    fail "the failure is not counted in the metrics: $(grep failures "$WORK/gc.prom")"
  [[ ! -e $entry ]] || fail "B's entry was not evicted while A fed their trash"
  # The next run (the feeder gone) goes on with what is left, and ends clean.
  pc gc --json >"$WORK/out" 2>"$WORK/err" || fail "the next gc failed: $(head -c 300 "$WORK/err")"
  [[ ! -e $trash ]] || fail "the next gc did not remove the rest of the trash"
  check_sentinel "a fed trash"
}
