# shellcheck shell=bash
# A private single-node Slurm for the e2e suite (and make demo, scripts/demo.sh): munged, slurmctld and slurmd
# with their own key, socket, ports, state and spool under $E2E_TMP. Source it,
# then: slurm_start; ...; slurm_stop. Needs root.
#
#   E2E_TMP       scratch directory (created by the caller, mode 0755)
#   E2E_PLUGIN    path of spank_pyxis_cache.so
#   E2E_BASE      container_cache_data_path
#   E2E_CLI       container_cache_cli
#   E2E_CPUS      the node's CPUs, when not nproc's (slurmd then takes the configured count:
#                 tests/pyxis-suite/run.sh, whose steps ask for 4 tasks on a 2-core machine)
#
# Clients (srun, sinfo) use $E2E_TMP/slurm.conf (export SLURM_CONF). slurmd
# reads its own copy, $E2E_TMP/slurmd/slurm.conf, and its own plugstack.conf,
# so that tests can give slurmstepd a configuration srun does not see.

# shellcheck source=tests/lib/slurm-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/slurm-common.sh"

# E2E_NODE: the node's name (tests/run.sh runs two of these clusters at once: each its own
# name, so that proctrack/cgroup's hierarchies, slurm_<node>, are apart).
E2E_NODE=${E2E_NODE:-e2enode}

slurm_log() { echo "# slurm.sh: $*" >&2; }

# plugstack_line [extra key=value...]: our plugin's line with the e2e defaults
# (and $E2E_PLUGSTACK_EXTRA, e.g. container_cache_fuse=no for bench/srun.sh).
plugstack_line() {
  echo "required $E2E_PLUGIN container_cache_data_path=$E2E_BASE container_cache_runtime=bwrap container_cache_cli=$E2E_CLI $* ${E2E_PLUGSTACK_EXTRA:-}"
}

_slurm_conf() { # _slurm_conf PLUGSTACK
  slurm_common_conf pyxiscache "$E2E_TMP" "$E2E_CTLD_PORT"
  cat <<CONF
SlurmdPort=$((E2E_CTLD_PORT + 1))
SlurmdSpoolDir=$E2E_TMP/slurmd/spool
SlurmdPidFile=$E2E_TMP/slurmd/slurmd.pid
SlurmdLogFile=$E2E_TMP/slurmd/slurmd.log
SlurmdDebug=debug
PlugStackConfig=$1
${E2E_CPUS:+SlurmdParameters=config_overrides}
NodeName=$E2E_NODE NodeHostname=$(hostname -s) NodeAddr=127.0.0.1 CPUs=${E2E_CPUS:-$(nproc)} State=UNKNOWN
PartitionName=e2e Nodes=$E2E_NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
}

# write_plugstack FILE [line]: default line when none is given.
write_plugstack() {
  local file=$1
  shift
  if (($#)); then printf '%s\n' "$@" >"$file"; else plugstack_line >"$file"; fi
  chmod 644 "$file"
}

_node_idle() { [[ $(sinfo -h -n "$E2E_NODE" -o %T 2>/dev/null) == idle ]]; }

# E2E_SLURMD_PATH: slurmd's PATH (default: ours), where slurmstepd finds the runtime.
slurmd_start() {
  # 3>&- : bats waits for whatever holds its fd 3.
  PATH=${E2E_SLURMD_PATH:-$PATH} /usr/sbin/slurmd -D -f "$E2E_TMP/slurmd/slurm.conf" -N "$E2E_NODE" </dev/null >>"$E2E_TMP/slurmd/stdout" 2>&1 3>&- &
  echo $! >"$E2E_TMP/slurmd/e2e.pid"
  wait_for 30 _node_idle || { slurm_log "slurmd did not come up"; tail -20 "$E2E_TMP/slurmd/slurmd.log" >&2; return 1; }
}

# slurmd may be restarted by a .bats file (another process): its pid is in a file.
slurmd_stop() {
  local pid
  pid=$(cat "$E2E_TMP/slurmd/e2e.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  wait_for 20 eval "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$E2E_TMP/slurmd/e2e.pid"
}

# slurmd_restart_with LINE...: slurmd reads plugstack.conf only when it starts.
slurmd_restart_with() {
  slurmd_stop
  write_plugstack "$E2E_TMP/slurmd/plugstack.conf" "$@"
  slurmd_start
}

# slurmd_restart_proctrack TYPE: slurmd (and so slurmstepd) with ProctrackType=proctrack/TYPE;
# for cgroup, cgroup v1's freezer (what these machines have), as the default plugstack.conf.
# slurmd reads both files only when it starts.
slurmd_restart_proctrack() {
  sed -i "s|^ProctrackType=.*|ProctrackType=proctrack/$1|" "$E2E_TMP/slurmd/slurm.conf"
  printf '%s\n' CgroupPlugin=cgroup/v1 CgroupMountpoint=/sys/fs/cgroup ConstrainCores=no \
    ConstrainRAMSpace=no ConstrainDevices=no >"$E2E_TMP/slurmd/cgroup.conf"
  slurmd_restart_with
}

slurm_start() {
  mkdir -p "$E2E_TMP"/{state,slurmd/spool}
  write_plugstack "$E2E_TMP/plugstack.conf"
  write_plugstack "$E2E_TMP/slurmd/plugstack.conf"
  # Below the ops cluster's ports (26000-31999) and the registries' (32768 and up): make test
  # runs them at once. E2E_PORTS="LOW HIGH" (default 20000 25999): slurmctld's port, slurmd's
  # the next one, both free now; tests/run.sh gives its two e2e clusters ranges apart.
  local low high
  read -r low high <<<"${E2E_PORTS:-20000 25999}"
  for _ in $(seq 50); do
    E2E_CTLD_PORT=$((low + RANDOM % (high - low)))
    ! ss -Htln "( sport = :$E2E_CTLD_PORT or sport = :$((E2E_CTLD_PORT + 1)) )" | grep -q . && break
  done
  _slurm_conf "$E2E_TMP/plugstack.conf" >"$E2E_TMP/slurm.conf"
  _slurm_conf "$E2E_TMP/slurmd/plugstack.conf" >"$E2E_TMP/slurmd/slurm.conf"
  chmod 644 "$E2E_TMP/slurm.conf" "$E2E_TMP/slurmd/slurm.conf"
  export SLURM_CONF=$E2E_TMP/slurm.conf

  munge_start "$E2E_TMP" || { slurm_log "munged did not start"; return 1; }
  echo "$MUNGE_PID" >>"$E2E_TMP/e2e.pids"

  /usr/sbin/slurmctld -D -i -f "$E2E_TMP/slurm.conf" </dev/null >>"$E2E_TMP/slurmctld.stdout" 2>&1 &
  echo $! >>"$E2E_TMP/e2e.pids"
  wait_for 20 sinfo -h || { slurm_log "slurmctld did not come up"; tail -20 "$E2E_TMP/slurmctld.log" >&2; return 1; }
  slurmd_start
}

# Stop what slurm_start started, by pid (recorded in files under $E2E_TMP, so
# any process may call this), newest first. Safe to call twice.
slurm_stop() {
  # Steps still running would outlive slurmd: cancel them first.
  if [[ -e $E2E_TMP/e2e.pids ]] && scancel --quiet --partition=e2e 2>/dev/null; then
    wait_for 15 eval '[[ -z $(squeue -h -p e2e 2>/dev/null) ]]' || true
  fi
  slurmd_stop
  local pid
  [[ -e $E2E_TMP/e2e.pids ]] || return 0
  for pid in $(tac "$E2E_TMP/e2e.pids"); do
    kill "$pid" 2>/dev/null || continue
    wait_for 10 eval "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -f "$E2E_TMP/e2e.pids"
}
