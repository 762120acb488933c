#!/usr/bin/env bash
# Runs every benchmark in bench/ (one executable per bench/*.cc) with its defaults and writes
# each one's output, plus a summary of the RESULT lines, into a results directory.
#
#   bench/run_all.sh [--build DIR] [--out DIR] [--quick] [--only NAME] [--timeout SECONDS]
#
#   --build DIR    CMake build directory holding zeroserve and bench/bench_* (default: build);
#                  the benchmark targets are (re)built there first
#   --out DIR      results directory (default: <build>/bench-results/<date>-<time>)
#   --quick        pass --quick to every benchmark (shorter runs, wider error bars)
#   --only NAME    run one benchmark, e.g. bench_worker
#   --timeout S    per-benchmark wall-clock limit (default 900)
#
# Numbers are only comparable within one run: each benchmark prints its baseline, its
# measurement and their ratio or difference; see bench/README.md. No thresholds are enforced:
# the exit status is non-zero only when a benchmark failed to run.
set -u -o pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
out=""
quick=""
only=""
limit=900
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$(cd "$2" && pwd)"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --quick) quick="--quick"; shift ;;
    --only) only="$2"; shift 2 ;;
    --timeout) limit="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "run_all.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || out="$build/bench-results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"

names=()
for src in "$root"/bench/*.cc; do
  n="$(basename "$src" .cc)"
  if [ -z "$only" ] || [ "$only" = "$n" ]; then names+=("$n"); fi
done
[ ${#names[@]} -gt 0 ] || { echo "run_all.sh: no benchmark named '$only'" >&2; exit 2; }

if [ -f "$build/CMakeCache.txt" ]; then
  cmake --build "$build" --target zeroserve "${names[@]}" >"$out/build.log" 2>&1 ||
    { echo "run_all.sh: build failed, see $out/build.log" >&2; exit 1; }
else
  echo "run_all.sh: $build is not a CMake build directory; configure it first:" >&2
  echo "  cmake -S $root -B $build -G Ninja && cmake --build $build" >&2
  exit 1
fi
export ZEROSERVE_BIN="$build/zeroserve"

{
  echo "date        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit      $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet 2>/dev/null || echo ' (with local changes)')"
  echo "host        $(uname -srm), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "cpu         $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "load        $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the start"
  echo "nofile      soft $(ulimit -Sn), hard $(ulimit -Hn)"
} >"$out/machine.txt"
cat "$out/machine.txt"

failed=0
: >"$out/summary.txt"
for n in "${names[@]}"; do
  exe="$build/bench/$n"
  echo
  echo "=== $n $quick (output: $out/$n.txt)"
  start=$(date +%s)
  timeout --kill-after=30 "$limit" "$exe" $quick 2>&1 | tee "$out/$n.txt"
  rc=${PIPESTATUS[0]}
  secs=$(( $(date +%s) - start ))
  if [ "$rc" -ne 0 ]; then
    failed=1
    echo "$n: FAILED (exit $rc after ${secs}s)" | tee -a "$out/summary.txt"
  else
    echo "$n: ok (${secs}s)" >>"$out/summary.txt"
  fi
  grep -E '^ *RESULT ' "$out/$n.txt" | sed "s/^ *RESULT /  $n: /" >>"$out/summary.txt" || true
done

echo
echo "=== summary ($out/summary.txt)"
cat "$out/summary.txt"
exit $failed
