#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for testing `attnlab submit`, job arrays and
# requeue end to end: munged + slurmctld + slurmd on localhost, everything (config, state, spool,
# logs, pid files) under $ATTNLAB_SLURM_DIR (default /var/tmp/attnlab-slurm).
#
#   scripts/slurm_local.sh start    # install packages if missing, write config, start, wait idle
#   scripts/slurm_local.sh status   # daemons + sinfo
#   scripts/slurm_local.sh stop     # stop daemons, remove the state dir
#   scripts/slurm_local.sh env      # prints `export SLURM_CONF=...` for clients (eval it)
#
# Clients find the config through SLURM_CONF; when /etc/slurm/slurm.conf is absent the script also
# links it there so plain `sbatch` works in any shell (an existing, foreign slurm.conf is never
# touched). Node CPUs and memory come from `slurmd -C`. Must run as root (SlurmUser=root).
set -euo pipefail

STATE_DIR="${ATTNLAB_SLURM_DIR:-/var/tmp/attnlab-slurm}"
CONF="$STATE_DIR/slurm.conf"
MARKER="# attnlab local cluster"
ETC_CONF=/etc/slurm/slurm.conf

log() { echo "[slurm_local] $*" >&2; }
die() { log "error: $*"; exit 1; }

install_packages() {
  local missing=()
  command -v slurmctld >/dev/null || missing+=(slurmctld)
  command -v slurmd >/dev/null || missing+=(slurmd)
  command -v sbatch >/dev/null || missing+=(slurm-client)
  command -v munged >/dev/null || missing+=(munge)
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y "${missing[@]}" >/dev/null 2>&1 ||
      { apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null; }
  fi
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
  mkdir -p "$STATE_DIR/munge"
  chown munge:munge "$STATE_DIR/munge"
  chmod 700 "$STATE_DIR/munge"
  if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating /etc/munge/munge.key"
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 2>/dev/null
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
  fi
  # The client library looks for the default socket, /run/munge/munge.socket.2.
  mkdir -p /run/munge
  chown munge:munge /run/munge
  chmod 755 /run/munge
  if pid_alive /run/munge/munged.pid && munge -n </dev/null | unmunge >/dev/null 2>&1; then
    return
  fi
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid \
    --log-file="$STATE_DIR/munge/munged.log" --seed-file="$STATE_DIR/munge/munged.seed"
  for _ in $(seq 50); do
    munge -n </dev/null | unmunge >/dev/null 2>&1 && return
    sleep 0.1
  done
  die "munged did not start (see $STATE_DIR/munge/munged.log)"
}

write_config() {
  local host node_line
  host="$(hostname -s)"
  # e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ... RealMemory=24105"
  node_line="$(slurmd -C | head -n 1)"
  mkdir -p "$STATE_DIR"/{state,spool,log}
  cat >"$CONF" <<EOF
$MARKER (scripts/slurm_local.sh); state under $STATE_DIR
ClusterName=attnlab
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE_DIR/state
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log
SlurmctldPort=${ATTNLAB_SLURMCTLD_PORT:-6817}
SlurmdPort=${ATTNLAB_SLURMD_PORT:-6818}
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
JobRequeue=1
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MaxArraySize=10001
# Fast turnaround for tests.
MessageTimeout=20
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=300
KillWait=5
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  if [[ ! -e "$ETC_CONF" ]] || grep -q "^$MARKER" "$ETC_CONF" 2>/dev/null || [[ -L "$ETC_CONF" ]]; then
    mkdir -p /etc/slurm
    ln -sfn "$CONF" "$ETC_CONF"
  else
    log "note: $ETC_CONF belongs to another cluster; clients need SLURM_CONF=$CONF"
  fi
}

wait_idle() {
  export SLURM_CONF="$CONF"
  local state=""
  for _ in $(seq 120); do
    state="$(sinfo -h -N -o '%T' 2>/dev/null | head -n 1 || true)"
    case "$state" in
      idle | mixed | allocated) log "node is $state; SLURM_CONF=$CONF"; return ;;
      down* | drain* | fail*)
        scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  die "node not idle after 60 s (state '$state'); logs in $STATE_DIR/log"
}

start() {
  [[ $EUID -eq 0 ]] || die "must run as root"
  install_packages
  start_munge
  write_config
  export SLURM_CONF="$CONF"
  if ! pid_alive "$STATE_DIR/slurmctld.pid"; then
    /usr/sbin/slurmctld -f "$CONF" -i  # -i: ignore state from a previous, unclean run
  fi
  if ! pid_alive "$STATE_DIR/slurmd.pid"; then
    /usr/sbin/slurmd -f "$CONF"
  fi
  wait_idle
}

stop_daemon() {
  local pidfile="$1" name="$2"
  if pid_alive "$pidfile"; then
    local pid
    pid="$(cat "$pidfile")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    log "$name did not stop; killing $pid"
    kill -9 "$pid" 2>/dev/null || true
  fi
}

stop() {
  export SLURM_CONF="$CONF"
  if [[ -f "$CONF" ]] && pid_alive "$STATE_DIR/slurmctld.pid"; then
    scancel --user=root >/dev/null 2>&1 || true
  fi
  stop_daemon "$STATE_DIR/slurmd.pid" slurmd
  stop_daemon "$STATE_DIR/slurmctld.pid" slurmctld
  stop_daemon /run/munge/munged.pid munged
  [[ -L "$ETC_CONF" && "$(readlink "$ETC_CONF")" == "$CONF" ]] && rm -f "$ETC_CONF"
  rm -rf "$STATE_DIR"
  log "stopped"
}

status() {
  export SLURM_CONF="$CONF"
  local rc=0
  for d in slurmctld slurmd; do
    if pid_alive "$STATE_DIR/$d.pid"; then echo "$d: running"; else echo "$d: stopped"; rc=1; fi
  done
  if pid_alive /run/munge/munged.pid; then echo "munged: running"; else echo "munged: stopped"; rc=1; fi
  ((rc == 0)) && sinfo -N
  return $rc
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
