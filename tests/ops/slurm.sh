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

OPS_PIDS=()

ops_log() { echo "# slurm.sh: $*" >&2; }

_ops_wait() { # _ops_wait SECONDS CMD...
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

_ops_conf() {
  local port=$((20000 + RANDOM % 20000)) i=0 node
  cat <<CONF
ClusterName=pyxisops
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$OPS_TMP/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$OPS_TMP/state
SlurmdSpoolDir=$OPS_TMP/slurmd/%n
SlurmctldPidFile=$OPS_TMP/slurmctld.pid
SlurmdPidFile=$OPS_TMP/slurmd/%n.pid
SlurmctldLogFile=$OPS_TMP/slurmctld.log
SlurmdLogFile=$OPS_TMP/slurmd/%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
InactiveLimit=0
KillWait=5
MinJobAge=5
SlurmdTimeout=30
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
  mkdir -p "$OPS_TMP"/{munge,state,slurmd} "$OPS_CACHE"
  chmod 755 "$OPS_TMP" "$OPS_TMP/munge"
  : >"$OPS_TMP/plugstack-slurm.conf" # no SPANK plugin: pre-warming needs none
  _ops_conf >"$OPS_TMP/slurm.conf"
  chmod 644 "$OPS_TMP/slurm.conf" "$OPS_TMP/plugstack-slurm.conf"
  export SLURM_CONF=$OPS_TMP/slurm.conf

  dd if=/dev/urandom of="$OPS_TMP/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$OPS_TMP/munge/munge.key"
  /usr/sbin/munged --foreground --force --socket="$OPS_TMP/munge/munge.socket" \
    --key-file="$OPS_TMP/munge/munge.key" --pid-file="$OPS_TMP/munge/munged.pid" \
    --seed-file="$OPS_TMP/munge/munged.seed" --log-file="$OPS_TMP/munge/munged.log" 2>>"$OPS_TMP/munge/stderr" &
  OPS_PIDS+=($!)
  _ops_wait 10 test -S "$OPS_TMP/munge/munge.socket" || { ops_log "munged did not start"; return 1; }

  /usr/sbin/slurmctld -D -i -f "$OPS_TMP/slurm.conf" >>"$OPS_TMP/slurmctld.stdout" 2>&1 &
  OPS_PIDS+=($!)
  _ops_wait 20 sinfo -h || { ops_log "slurmctld did not come up"; tail -20 "$OPS_TMP/slurmctld.log" >&2; return 1; }

  local node
  for node in "${OPS_NODES[@]}"; do
    # unshare execs: the pid we keep is slurmd's own.
    unshare --mount --uts --propagation private -- /bin/sh -c '
      hostname "$1" && mount -t tmpfs -o "size=$2,mode=755" "ops-$1" "$3" && shift 3 && exec "$@"' \
      sh "$node" "${OPS_CACHE_SIZE:-64m}" "$OPS_CACHE" \
      /usr/sbin/slurmd -D -f "$OPS_TMP/slurm.conf" -N "$node" >>"$OPS_TMP/slurmd/$node.stdout" 2>&1 &
    OPS_PIDS+=($!)
  done
  _ops_wait 40 _ops_all_idle || {
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
    _ops_wait 15 eval "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  OPS_PIDS=()
}
