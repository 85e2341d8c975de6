#!/usr/bin/env bash
# The operators' kit, end to end, as root: metrics (checked with promtool),
# gc counters and exit statuses, journal priorities, merging status from many
# nodes, pre-warming through a private 3-node Slurm, install/uninstall, the
# systemd units and the man page. Closing line: "N passed, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
export PATH=$here/.tools/node_modules/.bin:$PATH
cli=$here/bin/pyxis-cache

if [[ $(id -u) != 0 ]]; then
  echo "tests/ops: needs root (private Slurm, tmpfs mounts, prepare)" >&2
  exit 1
fi
for tool in promtool mksquashfs unshare slurmd slurmctld munged systemd-analyze man; do
  command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || { echo "tests/ops: $tool missing (make bootstrap-test)" >&2; exit 1; }
done

T=$(mktemp -d /tmp/pyxis-ops.XXXXXX)
chmod 755 "$T"
OPS_TMP=$T/slurm OPS_NODES=(n1 n2 n3) OPS_CACHE=$T/nodecache
# shellcheck source=tests/ops/slurm.sh
source "$here/tests/ops/slurm.sh"
cleanup() {
  ops_slurm_stop
  [[ -n ${holder:-} ]] && kill "$holder" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() {
  failed=$((failed + 1))
  echo "not ok - $1"
  shift
  [[ $# -gt 0 ]] && printf '#   %s\n' "$@"
}
# check NAME COMMAND...: passes when the command succeeds.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "${out//$'\n'/$'\n#   '}"; fi
}

# A sample image: busybox and a payload.
mkdir -p "$T/rootfs/bin" "$T/rootfs2/bin"
cp /bin/busybox "$T/rootfs/bin/" && cp /bin/busybox "$T/rootfs2/bin/"
head -c 2M /dev/urandom >"$T/rootfs2/payload"
mksquashfs "$T/rootfs" "$T/a.sqfs" -quiet -noappend -no-progress >/dev/null
mksquashfs "$T/rootfs2" "$T/b.sqfs" -quiet -noappend -no-progress >/dev/null

base=$T/cache
mkdir -p "$base" "$T/metrics"
C=(--no-plugstack --set "container_cache_data_path=$base")
FORCE=(--set container_cache_gc_high=2 --set container_cache_gc_low=1)
prom() { grep -E "^$1(\{| )" "$2" | awk '{print $NF}'; }
# held FILE: waits until a background holder has its lock (an exclusive try fails), at most 30 s.
held() {
  local i
  for ((i = 0; i < 3000; i++)); do
    flock -n -x "$1" true 2>/dev/null || return 0
    sleep 0.01
  done
  echo "tests/ops: $1 was never locked" >&2
  return 1
}

# ---------------------------------------------------------------- metrics
"$cli" reuse --image "$T/a.sqfs" "${C[@]}" >/dev/null
"$cli" reuse --image "$T/b.sqfs" --uid 1000 --gid 1000 "${C[@]}" >/dev/null
"$cli" status "${C[@]}" --prometheus "$T/metrics/pyxis-cache.prom" >/dev/null 2>"$T/err"
check "status --prometheus: exit 0 and nothing on stderr" test ! -s "$T/err"
check "status --prometheus: promtool check metrics accepts it" \
  sh -c "promtool check metrics <'$T/metrics/pyxis-cache.prom'"
check "status --prometheus: no temporary file left beside it, mode 0644" \
  sh -c "[ \$(ls -A '$T/metrics' | wc -l) = 1 ] && [ \$(stat -c %a '$T/metrics/pyxis-cache.prom') = 644 ]"
m=$T/metrics/pyxis-cache.prom
check "metrics: entries and bytes per uid" \
  sh -c "grep -q '^pyxis_cache_entries{.*uid=\"0\".*} 1$' '$m' && grep -q '^pyxis_cache_entries{.*uid=\"1000\".*} 1$' '$m' &&
         [ \$(grep -c '^pyxis_cache_entry_bytes{' '$m') = 2 ]"
check "metrics: filesystem used/available bytes match df" \
  sh -c "[ \$(($(prom pyxis_cache_filesystem_avail_bytes "$m") / 1048576)) -gt 0 ] && grep -q '^pyxis_cache_filesystem_used_bytes{' '$m'"
check "metrics: watermarks as ratios" \
  sh -c "[ '$(prom pyxis_cache_gc_high_watermark_ratio "$m")' = 0.85 ] && [ '$(prom pyxis_cache_gc_low_watermark_ratio "$m")' = 0.8 ]"

# A step holds entry a (shared lock), so gc must keep it.
lock=$("$cli" reuse --image "$T/a.sqfs" "${C[@]}" --json | sed 's/.*"lock":"\([^"]*\)".*/\1/')
# The subshell becomes sleep, holding the lock on fd 9: killing $holder releases it.
(exec 9<"$lock" && flock -s 9 && exec sleep 300) &
holder=$!
held "$lock"
"$cli" status "${C[@]}" --prometheus "$m" >/dev/null
check "metrics: entries in use" test "$(prom pyxis_cache_entries_in_use "$m")" = 1

# ---------------------------------------------------------------- gc counters, exit status, journal
runs0=$(sed 's/.*"runs":\([0-9]*\).*/\1/' "$base/pyxis-cache-gc.state.json")
"$cli" gc "${C[@]}" "${FORCE[@]}" --dry-run >/dev/null 2>&1
check "gc --dry-run does not count as a run" \
  test "$(sed 's/.*"runs":\([0-9]*\).*/\1/' "$base/pyxis-cache-gc.state.json")" = "$runs0"
started=$(date +%s)
out=$("$cli" gc "${C[@]}" "${FORCE[@]}" --journal --prometheus "$m" 2>&1)
rc=$?
check "gc with a full disk and an entry in use: exit 0 without --fail-if-full" test "$rc" = 0
check "gc --journal: every line starts with a priority, eviction <6>, summary <5>, still-full <4>" \
  sh -c "! printf '%s\n' \"\$1\" | grep -vq '^<[3-6]>' && printf '%s\n' \"\$1\" | grep -q '^<6>evicted pyxis_cache_u1000_' &&
         printf '%s\n' \"\$1\" | grep -q '^<5>gc: use' && printf '%s\n' \"\$1\" | grep -q '^<4>pyxis-cache: gc: use .* still at or above'" _ "$out"
check "gc --prometheus: promtool accepts it" sh -c "promtool check metrics <'$m'"
check "gc counters: 1 eviction, its bytes, a last success time" \
  sh -c "[ '$(prom pyxis_cache_gc_evictions_total "$m")' = 1 ] && [ '$(prom pyxis_cache_gc_freed_bytes_total "$m")' -gt 2000000 ] &&
         [ '$(prom pyxis_cache_gc_last_success_timestamp_seconds "$m")' -ge $started ]"
"$cli" gc "${C[@]}" "${FORCE[@]}" --fail-if-full --quiet >"$T/out" 2>"$T/err"
rc=$?
check "gc --fail-if-full: exit 1 while an entry in use keeps use above high, one error line" \
  sh -c "[ $rc = 1 ] && [ ! -s '$T/out' ] && [ \$(wc -l <'$T/err') = 1 ] && grep -q 'still at or above the high watermark' '$T/err'"
kill "$holder" && wait "$holder" 2>/dev/null
holder=
"$cli" reuse --image "$T/b.sqfs" --uid 1000 --gid 1000 "${C[@]}" >/dev/null
"$cli" gc "${C[@]}" "${FORCE[@]}" --prometheus "$m" >/dev/null 2>&1
check "gc counters are kept across runs (3 evictions, runs counted)" \
  sh -c "[ '$(prom pyxis_cache_gc_evictions_total "$m")' = 3 ] && [ '$(prom pyxis_cache_gc_runs_total "$m")' -ge $((runs0 + 3)) ]"
check "gc state file: JSON, 0644, no temporary files left in <base>" \
  sh -c "[ \$(stat -c %a '$base/pyxis-cache-gc.state.json') = 644 ] && ! ls -A '$base' | grep -q '\.tmp$'"
out=$("$cli" gc "${C[@]}" --quiet 2>&1)
check "gc --quiet with nothing to do prints nothing, exit 0 (cron mails nothing)" test -z "$out"
(exec 9<"$base/pyxis-container-cache-gc.lock" && flock -x 9 && exec sleep 300) &
holder=$!
held "$base/pyxis-container-cache-gc.lock"
out=$("$cli" gc "${C[@]}" --journal 2>&1)
rc=$?
kill "$holder" && wait "$holder" 2>/dev/null
holder=
check "gc while another collector runs: exit 0, <5> skipped" sh -c "[ $rc = 0 ] && [ '$out' = '<5>gc: skipped: another collector is running' ]"
"$cli" gc "${C[@]}" >"$T/journal" 2>&1 # plain, as a baseline
JOURNAL_STREAM=$(stat -c %d:%i "$T/journal") "$cli" gc "${C[@]}" >"$T/journal"
check "gc under systemd (\$JOURNAL_STREAM is stdout): priorities without --journal" grep -q '^<6>gc: use' "$T/journal"
out=$("$cli" gc "${C[@]}" </dev/null 2>&1)
check "gc on a terminal-less pipe without JOURNAL_STREAM: no priorities" sh -c "! printf '%s' \"\$1\" | grep -q '^<'" _ "$out"
"$cli" status "${C[@]}" --prometheus /nonexistent-dir/x.prom >/dev/null 2>"$T/err"
rc=$?
check "status --prometheus into a missing directory: exit 1, one line naming the file" \
  sh -c "[ $rc = 1 ] && [ \$(wc -l <'$T/err') = 1 ] && grep -q '/nonexistent-dir/x.prom' '$T/err'"
"$cli" status "${C[@]}" --prometheus "$T/other/../metrics2.prom" >/dev/null 2>"$T/err"
check "launcher grants write to the --prometheus directory only (relative segments resolved)" test -f "$T/metrics2.prom"
out=$(cd "$here" && deno task -q gc "${C[@]}" --json 2>&1)
check "deno task gc runs the collector (for cron)" sh -c "printf '%s' \"\$1\" | grep -q '\"usageAfter\"'" _ "$out"

# ---------------------------------------------------------------- status JSON and merge
"$cli" reuse --image "$T/a.sqfs" "${C[@]}" >/dev/null
"$cli" status "${C[@]}" --json >"$T/s1.json"
check "status --json has node = the hostname, contract fields unchanged" \
  sh -c "grep -q '\"node\":\"$(hostname)\"' '$T/s1.json' && grep -q '\"usage\":' '$T/s1.json' && grep -q '\"inUse\":false' '$T/s1.json'"
sed 's/"node":"[^"]*"/"node":"other"/' "$T/s1.json" >"$T/s2.json"
{ sed 's/^/0: /' "$T/s1.json"; sed 's/^/1: /' "$T/s2.json"; } >"$T/labelled"
out=$("$cli" status --merge "$T/s1.json" "$T/s2.json" "$T/s1.json" --json)
check "status --merge FILE...: one row per node, a node reported twice counts once" \
  sh -c "printf '%s' \"\$1\" | grep -o '\"node\":\"[^\"]*\"' | sort -u | wc -l | grep -qx 2 &&
         printf '%s' \"\$1\" | grep -q '\"nodes\":\[\"other\",\"$(hostname)\"\]\|\"nodes\":\[\"$(hostname)\",\"other\"\]'" _ "$out"
out=$("$cli" status --merge - <"$T/labelled")
check "status --merge - reads concatenated srun --label output on stdin: summary and one table per node" \
  sh -c "printf '%s\n' \"\$1\" | grep -q '^NODE ' && printf '%s\n' \"\$1\" | grep -q '^== other$' &&
         printf '%s\n' \"\$1\" | grep -q '^== $(hostname)$'" _ "$out"
echo '{"usage": 1, "entries": "x"}' >"$T/bad.json"
"$cli" status --merge "$T/bad.json" >/dev/null 2>"$T/err"
rc=$?
check "status --merge of something else: exit 2, one line" sh -c "[ $rc = 2 ] && [ \$(wc -l <'$T/err') = 1 ]"

# ---------------------------------------------------------------- multi-node: pre-warming through Slurm
if ops_slurm_start; then
  ok "private Slurm with ${#OPS_NODES[@]} slurmd nodes is up"
  printf 'required /usr/local/lib/slurm/spank_pyxis_cache.so container_cache_data_path=%s/base\n' "$OPS_CACHE" \
    >"$T/plugstack.conf"
  export PYXIS_CACHE_PLUGSTACK=$T/plugstack.conf
  out=$(srun -N3 --ntasks-per-node=1 "$cli" reuse --image "$T/b.sqfs" --json 2>&1)
  check "pre-warm: srun -N3 --ntasks-per-node=1 pyxis-cache reuse unpacks once on every node" \
    sh -c "[ \$(printf '%s\n' \"\$1\" | grep -c '\"created\":true') = 3 ]" _ "$out"
  out=$(srun -N3 --ntasks-per-node=1 "$cli" reuse --image "$T/b.sqfs" --json 2>&1)
  check "pre-warm again: every node is warm (created false, same name)" \
    sh -c "[ \$(printf '%s\n' \"\$1\" | grep -c '\"created\":false') = 3 ] &&
           [ \$(printf '%s\n' \"\$1\" | grep -o '\"name\":\"[^\"]*\"' | sort -u | wc -l) = 1 ]" _ "$out"
  srun -w n1,n2 -N2 --ntasks-per-node=1 "$cli" reuse --image "$T/a.sqfs" --uid 1000 --gid 1000 >/dev/null 2>&1
  # --quiet: a job queued behind the last one's end says so on srun's stderr, which is not a report.
  out=$(srun --quiet -N3 --ntasks-per-node=1 -l "$cli" status --json 2>&1 | "$cli" status --merge - --json)
  check "merged status of 3 nodes: nodes n1..n3, b on all three, a (uid 1000) on n1 and n2" \
    sh -c "printf '%s' \"\$1\" | grep -q '\"image\":\"$T/b.sqfs\",\"nodes\":\[\"n1\",\"n2\",\"n3\"\]' &&
           printf '%s' \"\$1\" | grep -q '\"image\":\"$T/a.sqfs\",\"nodes\":\[\"n1\",\"n2\"\]'" _ "$out"
  # --label: srun interleaves the nodes' output a message (1024 bytes at most) at a time.
  out=$(srun -N3 --ntasks-per-node=1 -l "$cli" status --json 2>/dev/null | "$cli" status --merge)
  check "merged table: one summary row per node and one table per node" \
    sh -c "[ \$(printf '%s\n' \"\$1\" | grep -c '^n[123] ') = 3 ] && [ \$(printf '%s\n' \"\$1\" | grep -c '^== n[123]$') = 3 ]" _ "$out"
  check "each node's cache is its own disk (the host's view is empty)" test ! -e "$OPS_CACHE/base"
  out=$(srun -N3 --ntasks-per-node=1 sh -c "'$cli' gc --set container_cache_gc_high=2 --set container_cache_gc_low=1 --quiet &&
          '$cli' status --prometheus '$OPS_CACHE/node.prom' >/dev/null && promtool check metrics <'$OPS_CACHE/node.prom' &&
          grep '^pyxis_cache_gc_evictions_total' '$OPS_CACHE/node.prom'" 2>&1)
  check "gc through srun on every node, metrics per node valid: n1, n2 evicted 2, n3 evicted 1" \
    sh -c "[ \$(printf '%s\n' \"\$1\" | grep -c '} 2$') = 2 ] && [ \$(printf '%s\n' \"\$1\" | grep -c '} 1$') = 1 ]" _ "$out"
  unset PYXIS_CACHE_PLUGSTACK
else
  not_ok "private Slurm with ${#OPS_NODES[@]} slurmd nodes is up" "$(tail -5 "$OPS_TMP"/*.log 2>/dev/null)"
fi
daemons=("${OPS_PIDS[@]}")
ops_slurm_stop
alive=()
for pid in "${daemons[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
check "every Slurm daemon (${#daemons[@]}: munged, slurmctld, 3 slurmd) is stopped, by pid" test ${#alive[@]} = 0

# ---------------------------------------------------------------- install / uninstall
dest=$T/destdir
make -s -C "$here" install PREFIX=/opt/pyxis-cache DESTDIR="$dest" INSTALL_DENO=1 >"$T/install.log" 2>&1
rc=$?
expected=(
  /opt/pyxis-cache/bin/pyxis-cache
  /opt/pyxis-cache/lib/pyxis-cache/bin/pyxis-cache
  /opt/pyxis-cache/lib/pyxis-cache/deno
  /opt/pyxis-cache/lib/pyxis-cache/installed-files
  /opt/pyxis-cache/lib/pyxis-cache/mod.ts
  /opt/pyxis-cache/lib/slurm/spank_pyxis_cache.so
  /opt/pyxis-cache/lib/systemd/system/pyxis-cache-gc.service
  /opt/pyxis-cache/lib/systemd/system/pyxis-cache-gc.timer
  /opt/pyxis-cache/share/doc/pyxis-cache/examples/plugstack.conf.d/pyxis-cache.conf
  /opt/pyxis-cache/share/man/man1/pyxis-cache.1
)
for f in "$here"/cmd/*.ts "$here"/lib/*.ts "$here"/lib/*/*.ts; do expected+=("/opt/pyxis-cache/lib/pyxis-cache/${f#"$here"/}"); done
for f in README.md docs/operations.md; do
  [[ -f $here/$f ]] && expected+=("/opt/pyxis-cache/share/doc/pyxis-cache/${f#docs/}")
done
diff <(printf '%s\n' "${expected[@]}" | sort) <(cd "$dest" && find . ! -type d | sed 's/^\.//' | sort) >"$T/diff"
check "make install DESTDIR PREFIX: exactly the expected files" sh -c "[ $rc = 0 ] && [ ! -s '$T/diff' ]"
[[ -s $T/diff ]] && sed 's/^/#   /' "$T/diff"
check "installed command is a link to the installed launcher (not a copy)" \
  test "$(readlink "$dest/opt/pyxis-cache/bin/pyxis-cache")" = ../lib/pyxis-cache/bin/pyxis-cache
out=$(env -i PATH=/usr/bin:/bin "$dest/opt/pyxis-cache/bin/pyxis-cache" status "${C[@]}" --json 2>&1)
check "installed command runs with its bundled Deno and an empty PATH of Deno" \
  sh -c "printf '%s' \"\$1\" | grep -q '\"node\":'" _ "$out"
check "installed units name the installed command" \
  grep -q '^ExecStart=/opt/pyxis-cache/bin/pyxis-cache gc ' "$dest/opt/pyxis-cache/lib/systemd/system/pyxis-cache-gc.service"
make -s -C "$here" uninstall PREFIX=/opt/pyxis-cache DESTDIR="$dest" >/dev/null 2>&1
check "make uninstall removes every file it installed, and its own directories" \
  sh -c "[ -z \"\$(find '$dest' ! -type d)\" ] && [ ! -e '$dest/opt/pyxis-cache/lib/pyxis-cache' ] &&
         [ ! -e '$dest/opt/pyxis-cache/share/doc/pyxis-cache' ]"

# Installed for real under a prefix in the scratch dir, so that the units' paths exist.
prefix=$T/prefix
make -s -C "$here" install PREFIX="$prefix" >/dev/null 2>&1
out=$(systemd-analyze verify "$prefix/lib/systemd/system/pyxis-cache-gc.service" \
  "$prefix/lib/systemd/system/pyxis-cache-gc.timer" 2>&1 | grep -v "Command 'man pyxis-cache(1)' failed")
check "systemd-analyze verify accepts the units (man: link aside)" test -z "$out"
check "timer: RandomizedDelaySec, runs measured from the end of the last one; service oneshot" \
  sh -c "grep -q '^RandomizedDelaySec=' '$prefix/lib/systemd/system/pyxis-cache-gc.timer' &&
         grep -q '^OnUnitInactiveSec=' '$prefix/lib/systemd/system/pyxis-cache-gc.timer' &&
         grep -q '^Type=oneshot' '$prefix/lib/systemd/system/pyxis-cache-gc.service'"
# Every caller reads the Deno cache install filled (DENO_DIR): a user's call writes no cache of its own.
mkdir -p "$T/nobody-home"
chown 65534:65534 "$T/nobody-home"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups env -i HOME="$T/nobody-home" \
  PATH="$here/.tools/node_modules/deno:/usr/bin:/bin" "$prefix/bin/pyxis-cache" key --image "$T/a.sqfs" 2>&1)
check "a real install fills the Deno cache that every user's call reads (no ~/.cache/deno of the user's)" \
  sh -c "[ -d '$prefix/lib/pyxis-cache/.deno-dir/gen' ] && [ ! -e '$T/nobody-home/.cache' ] &&
         printf '%s' \"\$1\" | grep -q '^pyxis_cache_u65534_'" _ "$out"
make -s -C "$here" uninstall PREFIX="$prefix" >/dev/null 2>&1
check "uninstall from a real prefix leaves no file" test -z "$(find "$prefix" ! -type d 2>/dev/null)"

# ---------------------------------------------------------------- man page covers every option of every --help
missing=()
for command in reuse gc status key prepare; do
  for option in $("$cli" "$command" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
    grep -q -- "${option//-/\\\\-}" "$here/docs/pyxis-cache.1" || missing+=("$command $option")
  done
done
check "docs/pyxis-cache.1 documents every option of every command's --help" test ${#missing[@]} = 0
((${#missing[@]})) && printf '#   missing: %s\n' "${missing[@]}"
check "man page renders without warnings" sh -c "! MANWIDTH=80 man --warnings -l '$here/docs/pyxis-cache.1' 2>&1 >/dev/null | grep -q ."

echo "$passed passed, $failed failed"
((failed == 0))
