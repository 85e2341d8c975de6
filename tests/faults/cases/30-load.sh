# shellcheck shell=bash
# Load: concurrent reuses while the collector keeps evicting; 32 concurrent srun steps.
CASES+=" load srun32"

any_alive() { local p; for p; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }

# Bounded by events: the collector runs FAULTS_LOAD_GC_RUNS (50) times back to back while the
# workers loop, then each worker goes on until it has verified 10. `make soak` sets
# FAULTS_LOAD_SECONDS (60): the workers loop that long, with a collection once a second.
case_load() {
  newbase 30m
  export GC_HIGH=60 GC_LOW=40
  local secs=${FAULTS_LOAD_SECONDS:-} runs=${FAULTS_LOAD_GC_RUNS:-50} w pids=() gcruns=0 end pause=0
  local stop=$WORK/load-stop deadline hard
  if [[ -n $secs ]]; then
    end=$((SECONDS + secs)) pause=1 deadline=$(($(date +%s) + secs)) hard=$(($(date +%s) + 5 * secs))
  else
    # A bound for a machine that never gets there, not a budget.
    end=0 deadline=$(($(date +%s) + 900)) hard=$(($(date +%s) + 900))
  fi
  rm -f "$WORK"/load-*.log "$stop"
  for w in 1 2 3 4; do
    local runas=as1
    ((w > 2)) && runas=as2
    $runas env BASE="$BASE" IMG="$IMG" PC="$PC" GC_HIGH=60 GC_LOW=40 DEADLINE="$deadline" STOP="$stop" \
      MIN_OK=10 HARD_DEADLINE="$hard" bash "$here/load-worker.sh" >"$WORK/load-$w.log" 2>&1 &
    pids+=($!)
    bgpids+=($!)
  done
  # The collector runs for as long as the workers do.
  while ((SECONDS < end || gcruns < (secs ? 0 : runs))) || any_alive "${pids[@]}"; do
    pc gc --stale-after 5 >/dev/null 2>"$WORK/gc-err" || fail "gc under load: $(head -c 200 "$WORK/gc-err")"
    gcruns=$((gcruns + 1))
    ((gcruns < runs)) || [[ -n $secs ]] || : >"$stop"
    sleep "$pause"
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
  ((ok >= 40)) || fail "only $ok reuses verified by $(date -d "@$hard" +%T): each worker must verify 10"
  unset GC_HIGH GC_LOW
}

case_srun32() { slurm_case 'srun32: '; }
