#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for tests/cluster/check_slurm.py (CI runs both).
#
# Idempotent: installs Debian's SLURM (slurm-wlm 22.05) and munge by name when missing, writes
# /etc/slurm/{slurm.conf,gres.conf}, (re)starts munged, slurmctld and slurmd, and waits until
# `sinfo` shows the node idle. One node, localhost, with the machine's cores and memory; two
# partitions, `cpu` (the default) and `gpu`; one GRES `gpu` backed by a dummy device file, so
# that `sbatch --gpus=1` is really scheduled (nothing runs on it: torch sees no CUDA, jobs run on
# the CPU). No accounting database: the workflow's jobs are followed with squeue (the executor
# plugin's `status_command: squeue`; MinJobAge keeps finished jobs listed for an hour) and every
# finished job is recorded by jobcomp/filetxt in /var/log/slurm/jobcomp.log.
# Stop it with tests/cluster/slurm_down.sh. Needs root (CI and the development machines are).
set -euo pipefail

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q slurm-wlm munge >/dev/null || {
    apt-get update -q >/dev/null && apt-get install -y -q slurm-wlm munge >/dev/null; }
fi

host=$(hostname -s)
cpus=$(nproc)
# slurmd -C reports the node's memory as SLURM sees it; leave 1 GiB to the system
mem=$(( $(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p') - 1024 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
# the GPU the gpu partition schedules: a dummy character device (the null device's numbers)
[ -e /dev/dummy-gpu0 ] || mknod /dev/dummy-gpu0 c 1 3

cat > /etc/slurm/slurm.conf <<CONF
# written by tests/cluster/slurm_up.sh
ClusterName=createbench
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
MinJobAge=3600
KillWait=30
ReturnToService=2
MpiDefault=none
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=${host} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=${host} MaxTime=INFINITE State=UP
CONF
cat > /etc/slurm/gres.conf <<CONF
NodeName=${host} Name=gpu File=/dev/dummy-gpu0
CONF

# (re)start the daemons with this configuration
pkill -x slurmd || true
pkill -x slurmctld || true
if ! pgrep -x munged >/dev/null; then
  chown -R munge:munge /run/munge /etc/munge 2>/dev/null || true
  su -s /bin/sh munge -c "/usr/sbin/munged" 2>/dev/null || /usr/sbin/munged --force
fi
for _ in $(seq 50); do pgrep -x slurmctld >/dev/null || break; sleep 0.2; done
/usr/sbin/slurmctld -i
/usr/sbin/slurmd
for _ in $(seq 60); do
  state=$(sinfo -h -N -o %t 2>/dev/null | head -n 1)
  if [ "$state" = idle ]; then
    sinfo
    exit 0
  fi
  scontrol update nodename="$host" state=resume 2>/dev/null || true
  sleep 1
done
echo "slurm_up.sh: the node is not idle after 60 s (state: ${state:-none}); see" \
  "/var/log/slurm/slurmctld.log and slurmd.log" >&2
exit 1
