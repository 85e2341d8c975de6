# shellcheck shell=bash
# A private multi-node Slurm on one machine for the ops suite: munged with its
# own key and socket, slurmctld, and one slurmd per node (`-N name`, its own
# port). Each slurmd runs in its own mount and UTS namespaces: its hostname is
# the node name and a private tmpfs is mounted on $OPS_CACHE, so that the
# "nodes" have separate cache disks at the same path, as real nodes do. Needs root.
#
#   OPS_TMP     scratch directory (created by the caller)
#   OPS_NODES   node names, e.g. (n1 n2 n3)
#   OPS_CACHE   the directory each node mounts its own tmpfs on
#   OPS_CACHE_SIZE  tmpfs size (default 64m)
#
# ops_slurm_start; ...; ops_slurm_stop (stops every daemon by pid; safe to call twice).

# shellcheck source=tests/lib/slurm-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/slurm-common.sh"

OPS_PIDS=()

ops_log() { echo "# slurm.sh: $*" >&2; }

_ops_conf() {
  # Ports of their own beside a concurrent e2e run (20000-25999) and registries (32768 and up).
  local port=$((26000 + RANDOM % 6000)) i=0 node
  slurm_common_conf pyxisops "$OPS_TMP" "$port"
  cat <<CONF
SlurmdPort=$((port + 1))
SlurmdSpoolDir=$OPS_TMP/slurmd/%n
SlurmdPidFile=$OPS_TMP/slurmd/%n.pid
SlurmdLogFile=$OPS_TMP/slurmd/%n.log
PlugStackConfig=$OPS_TMP/plugstack-slurm.conf
CONF
  for node in "${OPS_NODES[@]}"; do
    i=$((i + 1))
    echo "NodeName=$node NodeHostname=$node NodeAddr=127.0.0.1 Port=$((port + 1 + i)) CPUs=2 State=UNKNOWN"
  done
  echo "PartitionName=ops Nodes=$(IFS=,; echo "${OPS_NODES[*]}") Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES"
}

_ops_all_idle() {
  local states
  states=$(sinfo -h -N -o '%N %T' 2>/dev/null) || return 1
  [[ $(grep -c ' idle$' <<<"$states") -eq ${#OPS_NODES[@]} ]]
}

ops_slurm_start() {
  mkdir -p "$OPS_TMP"/{state,slurmd} "$OPS_CACHE"
  chmod 755 "$OPS_TMP"
  : >"$OPS_TMP/plugstack-slurm.conf" # no SPANK plugin: pre-warming needs none
  _ops_conf >"$OPS_TMP/slurm.conf"
  chmod 644 "$OPS_TMP/slurm.conf" "$OPS_TMP/plugstack-slurm.conf"
  export SLURM_CONF=$OPS_TMP/slurm.conf

  munge_start "$OPS_TMP" || { ops_log "munged did not start"; return 1; }
  OPS_PIDS+=("$MUNGE_PID")

  /usr/sbin/slurmctld -D -i -f "$OPS_TMP/slurm.conf" >>"$OPS_TMP/slurmctld.stdout" 2>&1 &
  OPS_PIDS+=($!)
  wait_for 20 sinfo -h || { ops_log "slurmctld did not come up"; tail -20 "$OPS_TMP/slurmctld.log" >&2; return 1; }

  local node
  for node in "${OPS_NODES[@]}"; do
    # unshare execs: the pid we keep is slurmd's own.
    unshare --mount --uts --propagation private -- /bin/sh -c '
      hostname "$1" && mount -t tmpfs -o "size=$2,mode=755" "ops-$1" "$3" && shift 3 && exec "$@"' \
      sh "$node" "${OPS_CACHE_SIZE:-64m}" "$OPS_CACHE" \
      /usr/sbin/slurmd -D -f "$OPS_TMP/slurm.conf" -N "$node" >>"$OPS_TMP/slurmd/$node.stdout" 2>&1 &
    OPS_PIDS+=($!)
  done
  wait_for 40 _ops_all_idle || {
    ops_log "slurmd nodes did not all come up:"
    sinfo -N >&2 || true
    tail -5 "$OPS_TMP"/slurmd/*.log >&2 || true
    return 1
  }
}

ops_slurm_stop() {
  local i pid
  for ((i = ${#OPS_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${OPS_PIDS[i]}
    kill "$pid" 2>/dev/null || continue
    wait_for 15 eval "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  OPS_PIDS=()
}
