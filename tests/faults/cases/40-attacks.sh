# shellcheck shell=bash
# Attacks on the command, each as a user performed it against root's documented commands:
# races against root's names (bounded in time), real file leases, real deep trees, images
# with names Deno cannot decode, hand-set mtimes, records that lie. Tools: tests/faults/attack.py.
CASES+=" redirect_record deep_trash leased_locks fifo_swap fifo_create_lock entry_exchange decoy_names future_mtime lying_records"

# attacker ARGS...: tests/faults/attack.py ARGS as pcfault1, in the background; APID is the attacker's own
# pid (a kill of the shell around it, what $! of `as1 ... &` is, would leave it running on into later cases).
attacker() {
  (exec setpriv --reuid="$U1" --regid="$G1" --init-groups -- /usr/bin/python3 "$here/attack.py" "$@") &
  APID=$!
}

# elapsed T0: seconds since T0 (from `date +%s.%N`), as a whole number rounded up.
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { s = b - a; printf "%d", (s == int(s)) ? s : int(s) + 1 }'; }

# 1. Root's `reuse --uid A` moves the entry's record into A's temporary directory; A swaps
# that directory for a symlink the moment root's staging directory appears in <base>.
case_redirect_record() {
  newbase 256m
  local b_entry b_lock before try target apid name swapped=0 unseen=0
  b_entry=$(as2 "$PC" reuse --image "$IMG/small.sqfs" --no-plugstack --set "container_cache_data_path=$BASE") ||
    fail "B's reuse"
  b_lock=$b_entry/.pyxis_cache_lock
  before=$(stat -c '%i %u' "$b_lock")
  mkdir -p "$WORK/rootonly" && chmod 700 "$WORK/rootonly"
  name=$(pckey --image "$IMG/many3.sqfs" --uid "$U1")
  # Ten tries the swap got into (half at B's entry, half at a root-only directory). A try it missed
  # on a busy machine proves nothing and is made again, up to 30 tries in all.
  for try in $(seq 30); do
    ((swapped < 10)) || { try=$((try - 1)); break; }
    target=$b_entry
    ((swapped % 2)) || target=$WORK/rootonly
    : >"$WORK/attack.out"
    attacker staging 60 "$BASE" "$BASE/$U1" "$target" >>"$WORK/attack.out"
    apid=$APID
    # Root's reuse starts once the swapper watches <base> (it wakes on the staging directory's creation).
    until grep -q watching "$WORK/attack.out" || ! kill -0 "$apid" 2>/dev/null; do sleep 0.01; done
    grep -q watching "$WORK/attack.out" || { fail "the swapper did not start: $(cat "$WORK/attack.out")"; break; }
    # Its wake-up must not wait behind a busy machine's run queue (it sleeps until the one event).
    chrt -f -p 10 "$apid" >/dev/null || renice -n -20 -p "$apid" >/dev/null
    pc reuse --image "$IMG/many3.sqfs" --uid "$U1" >/dev/null 2>"$WORK/err"
    kill "$apid" 2>/dev/null
    wait "$apid" 2>/dev/null
    grep -q swapped "$WORK/attack.out" && swapped=$((swapped + 1))
    grep -q 'no staging seen' "$WORK/attack.out" && unseen=$((unseen + 1))
    attacks=$((attacks + 1))
    [[ $(stat -c '%i %u' "$b_lock" 2>/dev/null) == "$before" ]] || { lose "B's entry lock was replaced (try $try)"; break; }
    [[ -z $(ls -A "$WORK/rootonly") ]] || { lose "a file was planted in a root-only directory (try $try)"; break; }
    rm -rf "${BASE:?}/$U1/$name" "$BASE/$U1"/stolen.* "$BASE/$U1"/.pyxis_cache_tmp.*
  done
  echo "    the swapper swapped in $swapped of $try tries ($unseen without a staging directory seen)" >&2
  # Woken by the staging directory itself, the swapper gets its swap in nearly every time root's reuse stages.
  ((swapped == 10)) || fail "the swap got in on $swapped of $try tries only: the others proved nothing"
  check_sentinel "the record redirect"
}

# 2. Trash nested 15,000 and 60,000 directories deep: gc must survive it, remove it, and
# still evict what it has to.
case_deep_trash() {
  newbase 256m
  local d=$BASE/$U1 h=0123456789abcdef0123 entry rc t0
  entry=$(as1 "$PC" reuse --image "$IMG/small.sqfs" --no-plugstack --set "container_cache_data_path=$BASE") ||
    fail "reuse"
  as1 mkdir "$d/.pyxis_cache_trash.pyxis_cache_u${U1}_$h.1" "$d/.pyxis_cache_trash.pyxis_cache_u${U1}_$h.2"
  as1 /usr/bin/python3 "$here/attack.py" deep "$d/.pyxis_cache_trash.pyxis_cache_u${U1}_$h.1" 15000 >/dev/null || fail "deep 15000"
  as1 /usr/bin/python3 "$here/attack.py" deep "$d/.pyxis_cache_trash.pyxis_cache_u${U1}_$h.2" 60000 >/dev/null || fail "deep 60000"
  attacks=$((attacks + 2))
  t0=$(date +%s.%N)
  timeout 300 "$PC" gc --all --stale-after 0 --json --no-plugstack --set "container_cache_data_path=$BASE" \
    >"$WORK/out" 2>"$WORK/err"
  rc=$?
  echo "    gc over 75,000 levels of trash: exit $rc in $(elapsed "$t0")s" >&2
  ((rc == 0)) || fail "gc exited $rc: $(head -c 300 "$WORK/err")"
  [[ -z $(find "$d" -maxdepth 1 -name '.pyxis_cache_trash.*' -print -quit) ]] || fail "the deep trash is still there"
  [[ ! -e $entry ]] || fail "the entry was not evicted"
  check_sentinel "deep trash"
}

# 3. Write leases on lock files: root's opens must not wait out the lease-break time
# (/proc/sys/fs/lease-break-time, 45 s by default).
case_leased_locks() {
  newbase 128m
  local d=$BASE/$U1 entry i e locks=() lpid t0 took rc
  entry=$(as1 "$PC" reuse --image "$IMG/small.sqfs" --no-plugstack --set "container_cache_data_path=$BASE") ||
    fail "reuse"
  locks+=("$entry/.pyxis_cache_lock")
  for i in 1 2 3; do
    e=$d/pyxis_cache_u${U1}_000000000000000000b$i
    as1 mkdir "$e" && as1 touch "$e/.pyxis_cache_lock" && as1 touch -m -d 1971-01-01 "$e"
    locks+=("$e/.pyxis_cache_lock")
  done
  attacker lease 300 "${locks[@]}" >"$WORK/attack.out"
  lpid=$APID
  for i in $(seq 50); do grep -q leased "$WORK/attack.out" && break; sleep 0.1; done
  grep -q leased "$WORK/attack.out" || fail "no lease taken: $(cat "$WORK/attack.out")"
  attacks=$((attacks + 4))
  t0=$(date +%s.%N)
  timeout 100 "$PC" status --json --no-plugstack --set "container_cache_data_path=$BASE" >"$WORK/out" 2>"$WORK/err"
  rc=$? took=$(elapsed "$t0")
  echo "    status over 4 leased locks: exit $rc in ${took}s" >&2
  ((rc == 0 && took < 10)) || fail "status took ${took}s (exit $rc) over leased locks"
  jq -e --arg e "$entry" '.entries[] | select(.path == $e) | .inUse' "$WORK/out" >/dev/null ||
    fail "the leased entry is not shown in use"
  t0=$(date +%s.%N)
  timeout 200 "$PC" gc --all --stale-after 0 --json --no-plugstack --set "container_cache_data_path=$BASE" \
    >"$WORK/out" 2>"$WORK/err"
  rc=$? took=$(elapsed "$t0")
  echo "    gc --all over 4 leased locks: exit $rc in ${took}s" >&2
  ((rc == 0 && took < 10)) || fail "gc took ${took}s (exit $rc) over leased locks"
  kill "$lpid" 2>/dev/null
  wait "$lpid" 2>/dev/null
  check_sentinel "leases"
}

# exchange_race A B FN: pcfault1 swaps A and B (renameat2 RENAME_EXCHANGE) in a loop while root
# calls FN, until 40 calls ran while the loop swapped (a call during which it never got to swap is no
# attack, and does not count), at most 80 calls; RUNS says how many ran.
exchange_race() {
  local landed=0 before after
  # Emptied here, not by the background job's redirection, which may come after the wait
  # below has read the previous case's "exchanging" (fifo_create_lock once began too early).
  : >"$WORK/attack.out"
  : >"$WORK/exchanges" && chown "$U1" "$WORK/exchanges"
  attacker exchange 600 "$1" "$2" "$WORK/exchanges" >>"$WORK/attack.out"
  # Python starts slowly on a loaded machine: root's calls begin once the swaps have.
  until grep -q exchanging "$WORK/attack.out" 2>/dev/null || ! kill -0 "$APID" 2>/dev/null; do sleep 0.05; done
  RUNS=0
  while grep -q exchanging "$WORK/attack.out" && ((landed < 40 && RUNS < 80)); do
    before=$(exchanges)
    "$3"
    after=$(exchanges)
    RUNS=$((RUNS + 1))
    ((after > before)) && landed=$((landed + 1))
  done
  kill "$APID" 2>/dev/null
  wait "$APID" 2>/dev/null
  attacks=$((attacks + landed))
  grep -q exchanging "$WORK/attack.out" || fail "the exchange loop did not run: $(cat "$WORK/attack.out")"
  ((landed == 40)) || fail "the exchange loop swapped during $landed of $RUNS calls only"
}
exchanges() { od -An -tu8 -N8 "$WORK/exchanges" | tr -d ' '; }
# timed_out CMD...: counts in HUNG whether CMD ran into its `timeout`.
timed_out() {
  "$@" >/dev/null 2>&1
  (($? == 124)) && HUNG=$((HUNG + 1))
  return 0
}

# 10. An entry's lock file exchanged with a FIFO in a loop while root runs status.
case_fifo_swap() {
  newbase 128m
  local entry
  entry=$(as1 "$PC" reuse --image "$IMG/small.sqfs" --no-plugstack --set "container_cache_data_path=$BASE") ||
    fail "reuse"
  as1 mkfifo "$entry/fifo"
  status_once() { timed_out timeout 5 "$PC" status --no-plugstack --set "container_cache_data_path=$BASE"; }
  HUNG=0
  exchange_race "$entry/.pyxis_cache_lock" "$entry/fifo" status_once
  echo "    status hung in $HUNG of $RUNS runs against the FIFO exchange" >&2
  ((HUNG == 0)) || fail "status hung on a FIFO in $HUNG of $RUNS runs"
}

# 10. The creation lock root's `reuse --uid A` takes, exchanged with a FIFO in a loop.
case_fifo_create_lock() {
  newbase 128m
  local name
  name=$(pckey --image "$IMG/small.sqfs" --uid "$U1")
  as1 touch "$BASE/$U1/.pyxis_cache_create.$name" && as1 mkfifo "$BASE/$U1/fifo"
  reuse_once() {
    timed_out timeout 10 "$PC" reuse --image "$IMG/small.sqfs" --uid "$U1" --no-plugstack \
      --set "container_cache_data_path=$BASE"
    rm -rf "${BASE:?}/$U1/$name"
  }
  HUNG=0
  exchange_race "$BASE/$U1/.pyxis_cache_create.$name" "$BASE/$U1/fifo" reuse_once
  echo "    root's reuse --uid hung in $HUNG of $RUNS runs against the FIFO exchange" >&2
  ((HUNG == 0)) || fail "root's reuse --uid waited on a FIFO in place of the creation lock in $HUNG of $RUNS runs"
}

# 6. A's entry exchanged with a symlink to B's entry in a loop: root's status must never
# show B's record in A's row (it would have opened B's lock through A's name).
case_entry_exchange() {
  newbase 256m
  local a_entry b_entry leaked=0
  a_entry=$(as1 "$PC" reuse --image "$IMG/small.sqfs" --no-plugstack --set "container_cache_data_path=$BASE") ||
    fail "A's reuse"
  b_entry=$(as2 "$PC" reuse --image "$IMG/many2.sqfs" --no-plugstack --set "container_cache_data_path=$BASE") ||
    fail "B's reuse"
  as1 ln -s "$b_entry" "$BASE/$U1/link"
  status_once() {
    timeout 20 "$PC" status --json --no-plugstack --set "container_cache_data_path=$BASE" >"$WORK/out" 2>/dev/null
    jq -e --argjson u "$U1" '[.entries[] | select(.uid == $u and (.image // "" | test("many2")))] | length > 0' \
      "$WORK/out" >/dev/null && leaked=$((leaked + 1))
    return 0
  }
  exchange_race "$a_entry" "$BASE/$U1/link" status_once
  echo "    B's record showed in A's row in $leaked of $RUNS runs" >&2
  ((leaked == 0)) || fail "root's status opened B's lock through A's entry in $leaked of $RUNS runs"
}

# 5. An image with a setuid-root file and device nodes under a directory named 0xff, and a
# decoy directory named U+FFFD (what Deno decodes 0xff to): root's copy must have neither.
case_decoy_names() {
  newbase 256m
  local src=$WORK/src/decoy entry bad
  rm -rf "$src" && mkdir -p "$src/$(printf '\xff')" "$src/$(printf '\xef\xbf\xbd')"
  cp /bin/busybox "$src/$(printf '\xff')/su" && chmod 4755 "$src/$(printf '\xff')/su"
  mknod "$src/$(printf '\xff')/mem" c 1 1 && mknod "$src/$(printf '\xff')/sda" b 8 0
  echo decoy >"$src/$(printf '\xef\xbf\xbd')/readme"
  mkimg decoy "$src" && chmod a+r "$IMG/decoy.sqfs"
  attacks=$((attacks + 1))
  entry=$(pc reuse --image "$IMG/decoy.sqfs" --uid 0 2>"$WORK/err")
  if [[ -n $entry && -d $entry ]]; then
    bad=$(find "$entry" \( -perm /6000 -o -type b -o -type c \) -printf '%P ' | od -c | head -3)
    [[ -z $(find "$entry" \( -perm /6000 -o -type b -o -type c \) -print -quit) ]] ||
      fail "root's entry kept setuid files or device nodes: $bad"
  fi
}

# 7. A's entries dated 2100 by hand must not outlive B's entries used since.
case_future_mtime() {
  newbase 128m
  local a b usage
  a=$(as1 "$PC" reuse --image "$IMG/tena.sqfs" --no-plugstack --set "container_cache_data_path=$BASE") || fail "A's reuse"
  b=$(as2 "$PC" reuse --image "$IMG/tenb.sqfs" --no-plugstack --set "container_cache_data_path=$BASE") || fail "B's reuse"
  as1 touch -m -d 2100-01-01 "$a"
  attacks=$((attacks + 1))
  usage=$(pc status --json | jq '.usage | floor')
  # High just below use, low so that evicting one of the two entries is enough.
  GC_HIGH=$((usage - 1)) GC_LOW=$((usage - 3)) pc gc --dry-run --json >"$WORK/out" 2>"$WORK/err"
  [[ $(jq -c '[.evicted[].uid]' "$WORK/out") == "[$U1]" ]] ||
    fail "gc would evict $(jq -c '[.evicted[].uid]' "$WORK/out"), not A's entry dated 2100 (uid $U1)"
  jq -e '.problems | any(test("in the future"))' "$WORK/out" >/dev/null || fail "the future mtime was not reported"
}

# 8. Records that lie: a size of 1e400 and of -5, an image string that carries terminal
# escapes and a forged table row.
case_lying_records() {
  newbase 128m
  local a1 a2 out
  a1=$(as1 "$PC" reuse --image "$IMG/small.sqfs" --no-plugstack --set "container_cache_data_path=$BASE") || fail "reuse 1"
  a2=$(as1 "$PC" reuse --image "$IMG/many1.sqfs" --no-plugstack --set "container_cache_data_path=$BASE") || fail "reuse 2"
  as1_sh "printf '%s\n' '{\"image\":\"/x\\u001b[2J\\nroot 0 1.0TiB FORGED\",\"bytes\":1e400,\"createdAt\":\"2026-01-01T00:00:00Z\",\"unpackSeconds\":1}' >'$a1/.pyxis_cache_lock'"
  as1_sh "printf '%s\n' '{\"image\":\"/y\",\"bytes\":-5,\"createdAt\":\"2026-01-01T00:00:00Z\",\"unpackSeconds\":1}' >'$a2/.pyxis_cache_lock'"
  attacks=$((attacks + 3))
  out=$(pc status 2>&1)
  [[ $out != *$'\e'* ]] || fail "status sent an escape character to the terminal"
  grep -q '^root 0 1.0TiB FORGED' <<<"$out" && fail "status printed a forged row"
  grep -qE 'Infinity|NaN|-5 B' <<<"$out" && fail "status showed a size nobody has: $(grep -E 'Infinity|NaN|-5' <<<"$out")"
  pc status --prometheus "$WORK/metrics.prom" >/dev/null 2>&1
  grep -qE ' (NaN|[+-]?Inf)$' "$WORK/metrics.prom" && fail "a metric is not a number: $(grep -E ' (NaN|[+-]?Inf)$' "$WORK/metrics.prom")"
  pc gc --all >/dev/null 2>&1
  jq -e '(.bytesFreed | type) == "number" and .bytesFreed >= 0' "$BASE/pyxis-cache-gc.state.json" >/dev/null ||
    fail "the gc counters were reset: $(cat "$BASE/pyxis-cache-gc.state.json")"
}
