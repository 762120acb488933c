#!/usr/bin/env bash
# Cold-start time to first token through Slurm vs through the local process runtime, on the
# same machine, with the part spent pending in Slurm shown separately (docs/cluster.md).
#
#   sudo bench/bench_slurm.sh [--rounds N] [--model F] [--zeroserve BIN]
#
# Starts a Slurm cluster of two nodes in network namespaces (tests/e2e/serial/slurm/
# slurm_cluster.sh) and one `serve` with two deployments of the same model, `local` (builtin
# runtime) and `slurm` (runtime: slurm), both scaling to zero after 1 s. Each round waits until
# both are at zero instances (and Slurm lists no job), then sends one request of max_tokens 1
# to each, in alternating order; the time of that answer is the cold-start TTFT. The Slurm
# pending time per start is what slurm-instance logs ("pending in Slurm X ms": from sbatch to
# the job's start on its node). Prints medians, the ratio slurm/local and RESULT lines.
# Needs root (namespaces) and slurm-wlm/munge (scripts/install-deps.sh). Cleans up on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
rounds=7
model="$root/../shared/golden/models/TinyStories-656K-Q8_0.gguf"
zs="${ZEROSERVE_BIN:-$root/build/zeroserve}"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --zeroserve) zs=$2; shift 2 ;;
    *) echo "unknown option $1 (--rounds N, --model F, --zeroserve BIN)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench_slurm needs root (network namespaces for the Slurm nodes)" >&2; exit 2; }
command -v slurmctld >/dev/null || { echo "slurm-wlm is not installed (scripts/install-deps.sh)" >&2; exit 2; }
[ -x "$zs" ] || { echo "no zeroserve at $zs (--zeroserve BIN)" >&2; exit 2; }

work=$(mktemp -d /tmp/zs-bench-slurm-XXXXXX)
cluster="$root/tests/e2e/serial/slurm/slurm_cluster.sh"
serve_pid=""
cleanup() {
  [ -n "$serve_pid" ] && kill -TERM "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null || true
  "$cluster" down "$work/cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"$cluster" up "$work/cluster" 2 2 >/dev/null
export SLURM_CONF="$work/cluster/slurm.conf"
mkdir -p "$work/shared"
port=$(( 30000 + RANDOM % 20000 ))
cat > "$work/zs.yaml" <<CONF
gateway:
  listen: 127.0.0.1:$port
  state_dir: $work/state
cluster:
  slurm_conf: $SLURM_CONF
  shared_dir: $work/shared
  poll: 250ms
  heartbeat_limit: 10s
deployments:
  - {name: local, model: $model, threads: 1, ctx: 512, keep_alive: 1s}
  - {name: slurm, runtime: slurm, model: $model, threads: 1, ctx: 512, keep_alive: 1s}
CONF
"$zs" serve --config "$work/zs.yaml" > "$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done

state() {
  curl -s "http://127.0.0.1:$port/v1/models" | python3 -c "import json,sys; print({m['id']: m.get('state') for m in json.load(sys.stdin)['data']}['$1'])"
}
at_zero() {
  for _ in $(seq 600); do
    if [ "$(state local)" = idle ] && [ "$(state slurm)" = idle ] && [ -z "$(squeue --noheader)" ]; then return 0; fi
    sleep 0.1
  done
  echo "the deployments did not scale to zero" >&2; exit 1
}
ttft() {  # seconds until the answer of one token arrives (non-streaming: the whole answer)
  curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$port/v1/completions" \
    -d "{\"model\":\"$1\",\"prompt\":\"Once upon a time\",\"max_tokens\":1}"
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

echo "bench_slurm: $rounds rounds, model $(basename "$model"), load $(cut -d' ' -f1-3 /proc/loadavg)"
: > "$work/local.txt"; : > "$work/slurm.txt"
for r in $(seq "$rounds"); do
  at_zero
  if [ $((r % 2)) -eq 1 ]; then order="local slurm"; else order="slurm local"; fi
  for d in $order; do t=$(ttft "$d"); echo "$t" >> "$work/$d.txt"; done
  printf 'round %d: local %.3f s, slurm %.3f s\n' "$r" "$(tail -1 "$work/local.txt")" "$(tail -1 "$work/slurm.txt")"
done
grep -o 'pending in Slurm [0-9]* ms, then started in [0-9]* ms' "$work/serve.log" > "$work/pending.txt" || true
local_m=$(median < "$work/local.txt")
slurm_m=$(median < "$work/slurm.txt")
pending_m=$(awk '{print $4/1000}' "$work/pending.txt" | median)
start_m=$(awk '{print $9/1000}' "$work/pending.txt" | median)
ratio=$(awk -v a="$slurm_m" -v b="$local_m" 'BEGIN {printf "%.2f", a/b}')
echo "median cold-start TTFT: local $local_m s, slurm $slurm_m s (pending in Slurm $pending_m s, then start on the node $start_m s)"
echo "RESULT bench_slurm cold_ttft_local_s=$local_m cold_ttft_slurm_s=$slurm_m ratio=$ratio slurm_pending_s=$pending_m"
echo "load at end $(cut -d' ' -f1-3 /proc/loadavg)"
