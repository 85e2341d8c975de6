# shellcheck shell=bash
# What one user does in their own directory against root's collector and the other users.
# Tools: tests/faults/attack.py.
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

# 2. A user's own bytes under <base>/<uid> that are no entry (fallocate): they count to that user in
# status and the metrics, and the collector removes them once stale, before it would evict anyone's
# entry for the space they take.
CASES+=" user_hog user_limit"
case_user_hog() {
  newbase 100m
  local b_entry out hog=$BASE/$U1/hog
  b_entry=$(as2 "$PC" reuse --image "$IMG/small.sqfs" --no-plugstack --set "container_cache_data_path=$BASE") ||
    fail "B's reuse"
  as1 fallocate -l 84M "$hog" || fail "fallocate"
  # And under a name that is not UTF-8 (Deno's readDir cannot name it): it counts, and goes, the same.
  as1 fallocate -l 4M "$BASE/$U1/$(printf 'x\xff')" || fail "fallocate"
  attacks=$((attacks + 2))
  out=$(pc status --json --prometheus "$WORK/status.prom" 2>"$WORK/err") || fail "status: $(cat "$WORK/err")"
  (($(jq ".usage" <<<"$out" | cut -d. -f1) >= 85)) || fail "the hog did not fill the filesystem: $(jq .usage <<<"$out")"
  (($(jq ".users[] | select(.uid == $U1) | .bytes" <<<"$out") >= 88 << 20)) ||
    fail "status does not count the hog to its user: $(jq -c .users <<<"$out")"
  (($(jq ".users[] | select(.uid == $U1) | .otherBytes" <<<"$out") >= 88 << 20)) || fail "not as otherBytes"
  (($(jq ".users[] | select(.uid == $U2) | .bytes" <<<"$out") < 8 << 20)) || fail "B is counted A's bytes"
  pc status >"$WORK/table" 2>/dev/null
  grep -qE "^pcfault1 +$U1 +88\.[0-9] MiB" "$WORK/table" || fail "the table does not show A's 88 MiB: $(tail -3 "$WORK/table")"
  grep -qE "^pyxis_cache_user_bytes\{base=\"$BASE\",uid=\"$U1\",user=\"pcfault1\"\} [0-9]{8,}$" "$WORK/status.prom" ||
    fail "the metrics do not count the hog: $(grep user_bytes "$WORK/status.prom")"
  # Stale (here at once): the hog goes, and B's entry stays.
  pc gc --stale-after 0 --json >"$WORK/out" 2>"$WORK/err" || fail "gc: $(head -c 300 "$WORK/err")"
  [[ ! -e $hog && ! -e $BASE/$U1/$(printf 'x\xff') ]] || fail "gc did not remove the user's stale files"
  [[ -d $b_entry ]] || fail "gc evicted B's entry for the space A's file took"
  jq -e "(.evicted | length) == 0 and .usageAfter < 85" "$WORK/out" >/dev/null || fail "gc: $(cat "$WORK/out")"
  check_sentinel "a user's hog"
}

# 3. container_cache_user_limit=25 on a 100 MiB filesystem: a user's third 10 MiB entry evicts their
# own oldest, never the other user's (older still); an image larger than the limit fails with one
# line naming it, and leaves nothing.
case_user_limit() {
  newbase 100m
  local b_entry x e out
  local -a a=() limit=(--set container_cache_user_limit=25)
  b_entry=$(as2 "$PC" reuse --image "$IMG/small.sqfs" --no-plugstack --set "container_cache_data_path=$BASE") ||
    fail "B's reuse"
  touch -d '2020-01-01' "$b_entry"
  for x in a b c; do
    e=$(pc reuse --image "$IMG/ten$x.sqfs" --uid "$U1" --gid "$G1" "${limit[@]}" 2>"$WORK/err") ||
      fail "A's reuse of ten$x: $(cat "$WORK/err")"
    # Each newer than the last (and than B's), by the LRU clock.
    touch -d "2021-01-0$((${#a[@]} + 1))" "$e"
    a+=("$e")
  done
  [[ ! -e ${a[0]} && -d ${a[1]} && -d ${a[2]} ]] || fail "A's third entry did not evict A's oldest alone: $(ls "$BASE/$U1")"
  [[ -d $b_entry ]] || fail "B's entry was evicted for A's"
  out=$(pc status --json "${limit[@]}") || fail "status"
  jq -e ".userLimit == 25 and (.users[] | select(.uid == $U1) | .bytes <= .limitBytes)" <<<"$out" >/dev/null ||
    fail "A is not within the limit: $(jq -c .users <<<"$out")"
  attacks=$((attacks + 1))
  pc reuse --image "$IMG/thirty.sqfs" --uid "$U1" --gid "$G1" "${limit[@]}" >/dev/null 2>"$WORK/err" &&
    fail "an image larger than the limit was created"
  one_line_error "$WORK/err" "container_cache_user_limit=25%"
  [[ -d $b_entry ]] || fail "B's entry was evicted for A's create that could not fit"
  (($(leftovers) == 0)) || fail "the refused create left a temporary directory"
  # gc holds every user to the limit, whatever the watermarks: 10% is less than one of A's entries.
  pc gc --json --set container_cache_user_limit=10 >"$WORK/out" 2>"$WORK/err"
  [[ ! -e ${a[1]} && ! -e ${a[2]} ]] || fail "gc left A above the limit"
  [[ -d $b_entry ]] || fail "gc evicted B's entry, which is within the limit"
  check_sentinel "the user limit"
}
