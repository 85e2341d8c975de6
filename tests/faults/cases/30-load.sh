# shellcheck shell=bash
# Load: concurrent reuses while the collector keeps evicting; 32 concurrent srun steps.
CASES+=" load srun32"

any_alive() { local p; for p; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }

case_load() {
  newbase 30m
  export GC_HIGH=60 GC_LOW=40
  local secs=${FAULTS_LOAD_SECONDS:-60} w pids=() gcruns=0 end
  end=$((SECONDS + secs))
  rm -f "$WORK"/load-*.log
  for w in 1 2 3 4; do
    local runas=as1
    ((w > 2)) && runas=as2
    $runas env BASE="$BASE" IMG="$IMG" PC="$PC" GC_HIGH=60 GC_LOW=40 DEADLINE=$(($(date +%s) + secs)) \
      MIN_OK=10 HARD_DEADLINE=$(($(date +%s) + 5 * secs)) bash "$here/load-worker.sh" >"$WORK/load-$w.log" 2>&1 &
    pids+=($!)
    bgpids+=($!)
  done
  # The collector runs for as long as the workers do.
  while ((SECONDS < end)) || any_alive "${pids[@]}"; do
    pc gc --stale-after 5 >/dev/null 2>"$WORK/gc-err" || fail "gc under load: $(head -c 200 "$WORK/gc-err")"
    gcruns=$((gcruns + 1))
    sleep 1
  done
  for w in "${pids[@]}"; do wait "$w" || true; done
  local total=0 ok=0 retry=0 nospace=0 bad=0 lostn=0
  for w in 1 2 3 4; do
    read -r t o r n b l < <(tail -1 "$WORK/load-$w.log")
    [[ $t =~ ^[0-9]+$ ]] || { fail "worker $w did not finish: $(tail -3 "$WORK/load-$w.log")"; continue; }
    total=$((total + t)) ok=$((ok + o)) retry=$((retry + r)) nospace=$((nospace + n)) bad=$((bad + b)) lostn=$((lostn + l))
  done
  echo "    $total reuses: $ok verified under their lock, $retry evicted before the lock (retried), $nospace no space, $bad other failures; $gcruns gc runs" >&2
  faults=$((faults + gcruns))
  ((bad == 0)) || fail "$bad reuses failed for a reason other than a full disk: $(grep -h FAIL "$WORK"/load-*.log | head -3)"
  ((lostn == 0)) || { lost=$((lost + lostn)); fail "LOST: $lostn entries incomplete or evicted under their lock: $(grep -h LOST "$WORK"/load-*.log | head -3)"; }
  ((ok >= 40)) || fail "only $ok reuses verified in $((5 * secs))s: each worker must verify 10"
  unset GC_HIGH GC_LOW
}

case_srun32() {
  if [[ ! -f $repo/tests/e2e/run.sh || ! -f $repo/tests/e2e/slurm.sh ]] || ! command -v slurmctld >/dev/null; then
    echo "    SKIPPED: no Slurm harness (tests/e2e/run.sh) or no slurmctld here" >&2
    echo "# srun32: SKIPPED (no Slurm harness)"
    return 0
  fi
  local out rc
  out=$(bash "$repo/tests/e2e/run.sh" --filter 'srun32' "$here/srun32.bats" 2>&1)
  rc=$?
  echo "$out" | sed 's/^/    /' >&2
  ((rc == 0)) || fail "32 concurrent srun steps: see above"
}
