#!/usr/bin/env bash
# Prefill and decode tokens/s of zeroserve against the reference build (../shared/reference,
# llama.cpp; a yardstick only: zeroserve never links, loads or copies anything from it), on the
# same GGUF files, in interleaved rounds: each round runs, for every model, the reference's
# llama-bench (-p PROMPT -n DECODE -r 1) and `zeroserve bench` (--repeats 1) back to back,
# alternating which goes first. Ratios zeroserve / reference are taken per round; medians and
# ranges are printed. Targets (issue #20): prefill >= 1.5x, decode >= 1.3x.
#
#   bench/bench_vs_reference.sh [--rounds N] [--threads N] [--prompt N] [--decode N] [--depth]
#                               MODEL.gguf...
#
# zeroserve decodes after its prompt; llama-bench decodes from an empty context unless given a
# depth. --depth makes the decode like for like at a long context: the reference's decode runs
# with -d PROMPT (after PROMPT tokens), in a second llama-bench call.
#
# Defaults: 5 rounds, 2 threads, 128-token prompts, 32 decoded tokens, and bench-1b at q8_0 and
# q4_k_m from $ZS_BENCH_CACHE (default /tmp/zs-bench; bench/bench_quant generates both).
# If the reference tool does not start on this machine, says so and exits 0.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
rounds=5 threads=2 prompt=128 decode=32 depth=0
zs="${ZEROSERVE_BIN:-$root/build/zeroserve}"
ref="$root/../shared/reference/run"
models=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --prompt) prompt=$2; shift 2 ;;
    --decode) decode=$2; shift 2 ;;
    --depth) depth=1; shift ;;
    --zeroserve) zs=$2; shift 2 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) models+=("$1"); shift ;;
  esac
done
cache="${ZS_BENCH_CACHE:-/tmp/zs-bench}"
[ ${#models[@]} -gt 0 ] || models=("$cache/bench-1b-L16-q8_0.gguf" "$cache/bench-1b-L16-q4_k_m.gguf")
for m in "${models[@]}"; do [ -f "$m" ] || { echo "missing $m (run bench/bench_quant --only b first)" >&2; exit 2; }; done
if ! "$ref" llama-bench --help >/dev/null 2>&1; then
  echo "the reference llama-bench does not start on this machine: no comparison"
  exit 0
fi
# Starting is not enough: a build for CPU features this machine lacks can start, then die in
# the first matrix product of some formats only (seen on Zen 4 hosts: SIGILL on an AVX-VNNI
# instruction in its Q8_0 path, while Q4_K_M runs). One tiny run per model tells, before any
# round; a model the reference cannot run is skipped, and said so.
usable=()
for m in "${models[@]}"; do
  rc=0
  ( "$ref" llama-bench -m "$m" -t "$threads" -p 8 -n 1 -r 1 -o csv; exit $? ) >/dev/null 2>&1 || rc=$?
  if [ "$rc" -eq 0 ]; then usable+=("$m"); continue; fi
  why="exit status $rc"
  [ "$rc" -eq 132 ] && why="SIGILL, an illegal instruction: built for CPU features this machine lacks"
  echo "the reference llama-bench fails on $(basename "$m") on this machine ($why): skipped"
done
[ ${#usable[@]} -gt 0 ] || { echo "no model the reference can run: no comparison"; exit 0; }
models=("${usable[@]}")

# Prints "pp_tps tg_tps" of one run of each tool.
ref_csv() {
  "$ref" llama-bench -m "$1" -t "$threads" -r 1 -o csv "${@:2}" 2>/dev/null |
    awk -F, 'NR == 1 { for (i = 1; i <= NF; ++i) { gsub(/"/, "", $i); col[$i] = i } next }
             { gsub(/"/, ""); if ($col["n_prompt"] > 0) pp = $col["avg_ts"]; else tg = $col["avg_ts"] }
             END { print pp, tg }'
}
run_ref() {
  if [ "$depth" -eq 0 ]; then ref_csv "$1" -p "$prompt" -n "$decode"; return; fi
  local pp tg
  pp=$(ref_csv "$1" -p "$prompt" -n 0 | cut -d' ' -f1)
  tg=$(ref_csv "$1" -p 0 -n "$decode" -d "$prompt" | cut -d' ' -f2)
  echo "$pp $tg"
}
run_zs() {
  "$zs" bench --model "$1" --threads "$threads" --prompt-tokens "$prompt" --decode-tokens "$decode" --repeats 1 2>/dev/null |
    awk '$1 == "prefill" { pp = $2 } $1 == "decode" && $2 ~ /^[0-9]/ { tg = $2 } END { print pp, tg }'
}

fail() { echo "bench_vs_reference: the $1 run on $(basename "$2") failed in round $((r + 1))" >&2; exit 1; }

echo "bench_vs_reference: $rounds rounds, $threads threads, prompt $prompt, decode $decode$([ "$depth" -eq 1 ] && echo " (reference decode at depth $prompt)"), load average $(cut -d' ' -f1 /proc/loadavg)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ((r = 0; r < rounds; ++r)); do
  for i in "${!models[@]}"; do
    m=${models[$i]}
    # A run that fails mid-way names itself (set -e alone would end the script in silence).
    if (( (r + i) % 2 == 0 )); then
      a=$(run_ref "$m") || fail reference "$m"; b=$(run_zs "$m") || fail zeroserve "$m"
    else
      b=$(run_zs "$m") || fail zeroserve "$m"; a=$(run_ref "$m") || fail reference "$m"
    fi
    echo "$i $a $b" >> "$tmp/rounds"
    echo "  round $((r + 1)) $(basename "$m"): reference pp $(echo "$a" | cut -d' ' -f1) tg $(echo "$a" | cut -d' ' -f2)," \
         "zeroserve pp $(echo "$b" | cut -d' ' -f1) tg $(echo "$b" | cut -d' ' -f2)"
  done
done
for i in "${!models[@]}"; do
  awk -v i="$i" -v name="$(basename "${models[$i]}")" '
    function med(a, n,   j, k, t) { for (j = 1; j <= n; ++j) for (k = j + 1; k <= n; ++k) if (a[k] < a[j]) { t = a[j]; a[j] = a[k]; a[k] = t }
                                    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    $1 == i && $2 > 0 && $3 > 0 { ++n; pr[n] = $4 / $2; tr[n] = $5 / $3; rp[n] = $2; rt[n] = $3; zp[n] = $4; zt[n] = $5
                                  if (n == 1 || pr[n] < plo) plo = pr[n]; if (n == 1 || pr[n] > phi) phi = pr[n]
                                  if (n == 1 || tr[n] < tlo) tlo = tr[n]; if (n == 1 || tr[n] > thi) thi = tr[n] }
    END { if (n == 0) { print "  " name ": no complete round"; exit }
          printf "  %s: reference pp %.1f tg %.2f tok/s, zeroserve pp %.1f tg %.2f tok/s (medians)\n", name, med(rp, n), med(rt, n), med(zp, n), med(zt, n)
          printf "  RESULT vs-reference prefill %s: %.2fx (median of %d rounds; min %.2f, max %.2f); target >= 1.5x\n", name, med(pr, n), n, plo, phi
          printf "  RESULT vs-reference decode %s: %.2fx (median of %d rounds; min %.2f, max %.2f); target >= 1.3x\n", name, med(tr, n), n, tlo, thi }' "$tmp/rounds"
done
echo "load average at the end $(cut -d' ' -f1 /proc/loadavg)"
