#!/usr/bin/env bash
# Stops the one-node cluster of tests/cluster/slurm_up.sh (its daemons; munged too) and cancels
# every job left in it. The packages and /etc/slurm stay, so slurm_up.sh starts it again quickly.
set -uo pipefail
scancel --user="$(id -un)" 2>/dev/null
pkill -x slurmd
pkill -x slurmctld
pkill -x munged
for _ in $(seq 50); do pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null || exit 0; sleep 0.2; done
echo "slurm_down.sh: daemons still running after 10 s" >&2
exit 1
