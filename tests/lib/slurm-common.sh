# shellcheck shell=bash
# What every private test Slurm here shares (tests/e2e/slurm.sh: one node with
# the plugin; tests/ops/slurm.sh: several nodes without it). Needs root.

# wait_for SECONDS CMD...: until CMD succeeds, or fail after SECONDS.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# slurm_common_conf CLUSTER DIR PORT: slurm.conf lines for a cluster of one
# machine with state under DIR, slurmctld on PORT, munge on DIR/munge, root
# daemons, and no cgroups; the caller adds the slurmd, plugstack and node lines.
slurm_common_conf() {
  cat <<CONF
ClusterName=$1
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$3
AuthType=auth/munge
AuthInfo=socket=$2/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$2/state
SlurmctldPidFile=$2/slurmctld.pid
SlurmctldLogFile=$2/slurmctld.log
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
CONF
}

# munge_start DIR: munged with its own key and socket under DIR/munge; its pid in MUNGE_PID.
munge_start() {
  local dir=$1/munge
  mkdir -p "$dir"
  chmod 755 "$dir"
  dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge.key"
  # 3>&- : bats waits for whatever holds its fd 3.
  /usr/sbin/munged --foreground --force --socket="$dir/munge.socket" --key-file="$dir/munge.key" \
    --pid-file="$dir/munged.pid" --seed-file="$dir/munged.seed" --log-file="$dir/munged.log" \
    </dev/null >/dev/null 2>>"$dir/stderr" 3>&- &
  MUNGE_PID=$!
  wait_for 10 test -S "$dir/munge.socket" || { echo "# munged did not start" >&2; return 1; }
}
