#!/usr/bin/env bash
# Prefill and decode tokens/s of two zeroserve builds (a change against the build before it),
# on the same GGUF files, in interleaved rounds: each round runs `zeroserve bench --repeats 1`
# of both builds back to back, alternating which goes first. Ratios new / old are taken per
# round; medians and ranges are printed. For engine changes that have no switch to compare
# in one process (docs/engine.md names the runs made with it).
#
#   bench/bench_ab.sh --old OLD/zeroserve [--new NEW/zeroserve] [--rounds N] [--threads N]
#                     [--prompt N] [--decode N] MODEL.gguf...
#
# Defaults: the new build is build/zeroserve, 7 rounds, 2 threads, 128-token prompts, 64
# decoded tokens. Build the old one from a worktree: git worktree add /tmp/old REV &&
# cmake -S /tmp/old -B /tmp/old/build -G Ninja && cmake --build /tmp/old/build --target zeroserve
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
rounds=7 threads=2 prompt=128 decode=64
new="$root/build/zeroserve" old=""
models=()
while [ $# -gt 0 ]; do
  case "$1" in
    --old) old=$2; shift 2 ;;
    --new) new=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --prompt) prompt=$2; shift 2 ;;
    --decode) decode=$2; shift 2 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) models+=("$1"); shift ;;
  esac
done
[ -n "$old" ] || { echo "bench_ab: --old names the zeroserve binary to compare against" >&2; exit 2; }
for b in "$old" "$new"; do [ -x "$b" ] || { echo "bench_ab: $b is not an executable" >&2; exit 2; }; done
[ ${#models[@]} -gt 0 ] || { echo "bench_ab: name at least one model" >&2; exit 2; }
for m in "${models[@]}"; do [ -f "$m" ] || { echo "bench_ab: missing $m" >&2; exit 2; }; done

# Prints "pp_tps tg_tps" of one run.
run() {
  "$1" bench --model "$2" --threads "$threads" --prompt-tokens "$prompt" --decode-tokens "$decode" --repeats 1 2>/dev/null |
    awk '$1 == "prefill" { pp = $2 } $1 == "decode" && $2 ~ /^[0-9]/ { tg = $2 } END { if (pp == "" || tg == "") exit 1; print pp, tg }'
}
fail() { echo "bench_ab: the $1 build failed on $(basename "$2") in round $((r + 1))" >&2; exit 1; }

echo "bench_ab: $rounds rounds, $threads threads, prompt $prompt, decode $decode, load average $(cut -d' ' -f1 /proc/loadavg)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ((r = 0; r < rounds; ++r)); do
  for i in "${!models[@]}"; do
    m=${models[$i]}
    if (( (r + i) % 2 == 0 )); then
      a=$(run "$old" "$m") || fail old "$m"; b=$(run "$new" "$m") || fail new "$m"
    else
      b=$(run "$new" "$m") || fail new "$m"; a=$(run "$old" "$m") || fail old "$m"
    fi
    echo "$i $a $b" >> "$tmp/rounds"
  done
done
for i in "${!models[@]}"; do
  awk -v i="$i" -v name="$(basename "${models[$i]}")" '
    function med(a, n,   j, k, t) { for (j = 1; j <= n; ++j) for (k = j + 1; k <= n; ++k) if (a[k] < a[j]) { t = a[j]; a[j] = a[k]; a[k] = t }
                                    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    $1 == i { ++n; pr[n] = $4 / $2; tr[n] = $5 / $3; op[n] = $2; ot[n] = $3; np[n] = $4; nt[n] = $5
              if (n == 1 || pr[n] < plo) plo = pr[n]; if (n == 1 || pr[n] > phi) phi = pr[n]
              if (n == 1 || tr[n] < tlo) tlo = tr[n]; if (n == 1 || tr[n] > thi) thi = tr[n] }
    END { printf "  %s: old pp %.1f tg %.2f tok/s, new pp %.1f tg %.2f tok/s (medians)\n", name, med(op, n), med(ot, n), med(np, n), med(nt, n)
          printf "  RESULT ab prefill %s: %.2fx (median of %d rounds; min %.2f, max %.2f)\n", name, med(pr, n), n, plo, phi
          printf "  RESULT ab decode %s: %.2fx (median of %d rounds; min %.2f, max %.2f)\n", name, med(tr, n), n, tlo, thi }' "$tmp/rounds"
done
echo "load average at the end $(cut -d' ' -f1 /proc/loadavg)"
