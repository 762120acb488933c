#!/usr/bin/env bash
# A real Slurm cluster on this machine for the end-to-end tests (tests/e2e/serial/slurm):
# munged, slurmctld and NODES slurmd "nodes", each slurmd in its own network and UTS namespace
# with its own hostname (zsnode<i>) and address on a bridge made here. Everything lives under
# DIR (config, state, logs, pid files); nothing else on the machine is touched.
#
#   slurm_cluster.sh up DIR [NODES] [CPUS_PER_NODE] [elastic]
#                                                     start (prints SLURM_CONF=..., the bridge's address);
#                                                     "elastic": the nodes start powered down and Slurm's
#                                                     power saving starts them for queued jobs
#                                                     (ResumeProgram) and stops them when idle
#                                                     (SuspendProgram), as on a cloud cluster
#   slurm_cluster.sh down DIR                         stop everything `up` started under DIR (idempotent)
#   slurm_cluster.sh kill-node DIR I                  SIGKILL the slurmd of node I
#
# Needs root (namespaces, bridges, daemons). Addresses are 10.213.X.0/24, X from DIR's hash:
# private to the test, reachable only from this machine.
set -euo pipefail
# A step that fails says which one: without this, `set -e` ends the script silently and the
# test sees only "the cluster did not come up".
trap 'echo "slurm_cluster.sh:$LINENO: \"$BASH_COMMAND\" failed (exit $?); logs in ${dir:-DIR}/log" >&2' ERR
cmd=${1:?usage: slurm_cluster.sh up|down|kill-node DIR}
dir=${2:?DIR is required}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
tag=$(printf '%s' "$dir" | md5sum | cut -c1-4)
subnet=$(( 16#${tag:0:2} % 250 + 1 ))
# slurmctld listens in this machine's namespace: a port of its own per DIR, so that two
# clusters (two test runs) can run side by side. It stays below the ephemeral range (32768 and
# up on Debian), where the tests' own connections take their ports, and skips a port in use
# (such a collision made slurmctld exit with "Address already in use" while `up` kept asking
# it for nodes).
ctld_port=$(( 20000 + 16#${tag} % 12000 ))
port_in_use() { [ -n "$(ss -Htan "sport = :$1" 2>/dev/null)" ]; }
bridge="zsbr$tag"

down() {
  for f in "$dir"/pids/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
  done
  sleep 0.5
  for f in "$dir"/pids/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  # Job steps slurmstepd started in a node's namespace die with the namespace's processes.
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^zsn${tag}-" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null || true); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
  # Slurm's saved state (jobs, nodes) belongs to this cluster only.
  rm -rf "$dir/state" "$dir/spool"
}

case "$cmd" in
  down) down; exit 0 ;;
  kill-node)
    i=${3:?node index}
    kill -KILL "$(cat "$dir/pids/slurmd$i.pid")"
    exit 0 ;;
  up) ;;
  *) echo "unknown command '$cmd' (up, down, kill-node)" >&2; exit 2 ;;
esac

nodes=${3:-2}
cpus=${4:-2}
elastic=${5:-}
down
mkdir -p "$dir"/{pids,log,state,spool,munge}
chmod 700 "$dir/munge"

# munged with a key of its own and its own socket.
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1 count=128 status=none
chmod 400 "$dir/munge/munge.key"
munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
  --pid-file="$dir/pids/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed"
for _ in $(seq 50); do [ -S "$dir/munge/munge.sock" ] && break; sleep 0.1; done

# The bridge, with the controller's address; one namespace and veth pair per node. Its /24
# skips one another bridge already holds (a cluster running beside this one, or left by a
# killed run): two bridges with one subnet route the nodes' packets to the wrong one, and no
# slurmd reaches slurmctld ("Unable to contact slurm controller", no node idle).
subnet_in_use() { ip -4 -o addr show 2>/dev/null | grep -q " 10\.213\.$1\."; }
for _ in $(seq 250); do
  subnet_in_use "$subnet" || break
  subnet=$(( subnet % 250 + 1 ))
done
net="10.213.$subnet"
ip link add "$bridge" type bridge
ip addr add "$net.1/24" dev "$bridge"
ip link set "$bridge" up
node_lines=""
for i in $(seq 1 "$nodes"); do
  ns="zsn${tag}-$i"
  ip netns add "$ns"
  ip link add "zsv${tag}h$i" type veth peer name "zsv${tag}n$i"
  ip link set "zsv${tag}h$i" master "$bridge" up
  ip link set "zsv${tag}n$i" netns "$ns"
  ip -n "$ns" addr add "$net.$((10 + i))/24" dev "zsv${tag}n$i"
  ip -n "$ns" link set "zsv${tag}n$i" up
  ip -n "$ns" link set lo up
  node_state=UNKNOWN
  [ "$elastic" = elastic ] && node_state=CLOUD
  node_lines+="NodeName=zsnode$i NodeAddr=$net.$((10 + i)) CPUs=$cpus RealMemory=4000 State=$node_state"$'\n'
done

# Starting one node is starting its slurmd in its namespace (what a cloud's ResumeProgram does
# by booting a VM); stopping it is stopping that slurmd.
cat > "$dir/node-start" <<SCRIPT
#!/bin/sh
# ResumeProgram: starts the slurmd of each node named in \$1 (a Slurm host list).
export SLURM_CONF=$dir/slurm.conf
for host in \$(scontrol show hostnames "\$1"); do
  i=\${host#zsnode}
  echo "\$(date +%T) start \$host" >> $dir/log/power.log
  # slurmctld accepts a node it powered up only if the node booted after it asked: an elastic
  # node "boots" for two seconds and gets a boot clock of its own (a time namespace) that
  # starts then.
  boot=""
  if [ "$elastic" = elastic ]; then
    sleep 2
    boot="--time --fork --kill-child --boottime -\$(cut -d. -f1 /proc/uptime)"
  fi
  setsid ip netns exec "zsn${tag}-\$i" unshare -u \$boot sh -c "hostname \$host; exec slurmd -D -f $dir/slurm.conf" \\
    >>"$dir/log/slurmd\$i.out" 2>&1 </dev/null &
  echo \$! > "$dir/pids/slurmd\$i.pid"
done
SCRIPT
cat > "$dir/node-stop" <<SCRIPT
#!/bin/sh
# SuspendProgram: stops the slurmd of each node named in \$1.
export SLURM_CONF=$dir/slurm.conf
for host in \$(scontrol show hostnames "\$1"); do
  i=\${host#zsnode}
  echo "\$(date +%T) stop \$host" >> $dir/log/power.log
  [ -e "$dir/pids/slurmd\$i.pid" ] && kill -TERM "\$(cat "$dir/pids/slurmd\$i.pid")" 2>/dev/null
  rm -f "$dir/pids/slurmd\$i.pid"
done
SCRIPT
chmod 755 "$dir/node-start" "$dir/node-stop"
power_lines=""
if [ "$elastic" = elastic ]; then
  # PrivateData=cloud: powered-down cloud nodes are listed (sinfo, scontrol), not hidden.
  power_lines="PrivateData=cloud
SuspendProgram=$dir/node-stop
ResumeProgram=$dir/node-start
SuspendTime=4
SuspendTimeout=3
ResumeTimeout=30
SuspendRate=0
ResumeRate=0"
fi

while port_in_use "$ctld_port"; do ctld_port=$((ctld_port + 1)); done
cat > "$dir/slurm.conf" <<CONF
ClusterName=zstest
SlurmctldHost=zsctl($net.1)
SlurmctldPort=$ctld_port
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.sock
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/pids/slurmctld.pid.conf
SlurmdPidFile=$dir/spool/%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SlurmdTimeout=5
SlurmctldTimeout=10
InactiveLimit=0
KillWait=2
MinJobAge=300
MessageTimeout=5
SchedulerParameters=sched_interval=1,batch_sched_delay=0
$power_lines
$node_lines
PartitionName=zs Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
# slurmd loads a cgroup plugin even with task/none; name the hierarchy (machines and
# containers with cgroup v1 mounted on a tmpfs make autodetection fail).
if [ -d /sys/fs/cgroup/freezer ]; then cgplugin=cgroup/v1; else cgplugin=cgroup/v2; fi
cat > "$dir/cgroup.conf" <<CONF
CgroupPlugin=$cgplugin
CgroupMountpoint=/sys/fs/cgroup
CONF
export SLURM_CONF="$dir/slurm.conf"

# slurmctld in a UTS namespace of its own, named as SlurmctldHost says. If it exits at start
# because its port was taken meanwhile, it is started again on the next free port.
ctld_alive() { kill -0 "$(cat "$dir/pids/slurmctld.pid")" 2>/dev/null; }
for attempt in 1 2 3; do
  setsid unshare -u sh -c "hostname zsctl; exec slurmctld -D -i -f $dir/slurm.conf" \
    >>"$dir/log/slurmctld.out" 2>&1 </dev/null &
  echo $! > "$dir/pids/slurmctld.pid"
  for _ in $(seq 100); do
    scontrol ping >/dev/null 2>&1 && break
    ctld_alive || break
    sleep 0.1
  done
  ctld_alive && break
  if [ "$attempt" -lt 3 ] && grep -q "Address already in use" "$dir/log/slurmctld.log" 2>/dev/null; then
    ctld_port=$((ctld_port + 1))
    while port_in_use "$ctld_port"; do ctld_port=$((ctld_port + 1)); done
    sed -i "s/^SlurmctldPort=.*/SlurmctldPort=$ctld_port/" "$dir/slurm.conf"
    : > "$dir/log/slurmctld.log"
    continue
  fi
  break
done
if ! ctld_alive; then
  echo "slurmctld exited at start; see $dir/log" >&2
  tail -n 20 "$dir"/log/slurmctld.log "$dir"/log/slurmctld.out >&2 || true
  exit 1
fi

# A query of a busy or still starting slurmctld can time out: that is "not yet", never the
# end of the script (with pipefail, a failed sinfo would fail the assignment and, through
# set -e, `up` itself).
count_nodes() { { "$@" 2>/dev/null || true; } | wc -l; }

for i in $(seq 1 "$nodes"); do mkdir -p "$dir/spool/zsnode$i"; done
if [ "$elastic" = elastic ]; then
  # Powered down until a job needs them.
  for _ in $(seq 200); do
    idle=$({ scontrol --oneliner show nodes 2>/dev/null || true; } | grep -c 'POWERED_DOWN' || true)
    [ "$idle" -ge "$nodes" ] && break
    ctld_alive || break
    sleep 0.1
  done
else
  "$dir/node-start" "zsnode[1-$nodes]"
  # Every node idle; a query of a dead slurmctld can take many seconds to fail, so the wait
  # also ends when slurmctld has gone or after 60 s.
  deadline=$((SECONDS + 60))
  for _ in $(seq 200); do
    idle=$(count_nodes sinfo --noheader --responding --states=idle --format=%n)
    [ "$idle" -ge "$nodes" ] && break
    ctld_alive && [ "$SECONDS" -lt "$deadline" ] || break
    sleep 0.1
  done
fi
if [ "$idle" -lt "$nodes" ]; then
  echo "only $idle of $nodes nodes became idle; see $dir/log" >&2
  sinfo >&2 || true
  tail -n 20 "$dir"/log/*.log >&2 || true
  exit 1
fi
echo "SLURM_CONF=$dir/slurm.conf"
echo "BRIDGE_ADDRESS=$net.1"
