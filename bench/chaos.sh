#!/usr/bin/env bash
# The long form of the chaos test (tests/e2e/serial/chaos_test.cc), about 10 minutes: capacity
# measured with 8 closed-loop clients, then an open-loop load at twice that for 150 s calm and
# 420 s with one worker killed (SIGKILL) every 15 s, 400 hostile requests beside 20 slow
# clients, 65 MiB bodies, and serve killed at the end. It prints requests sent, complete, each
# error class, p50/p99 latency of complete requests with kills and without (and their ratio),
# and serve's resident memory before and after; it fails on any cut stream, hang, reset, request
# lost to a dead instance, 5xx for bad input, orphaned worker or memory that does not come back.
#
#   bench/chaos.sh [--build DIR] [--calm SECONDS] [--kills SECONDS]
#
# Everything stays on 127.0.0.1 and unix sockets. Run it on a quiet machine: it saturates the
# cores (the load is twice what they serve).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
calm=150
kills=420
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$(cd "$2" && pwd)"; shift 2 ;;
    --calm) calm="$2"; shift 2 ;;
    --kills) kills="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
cmake --build "$build" --target zs_e2e_serial_tests zeroserve >/dev/null
# The daemon's own log lines (info, warn, error) go to a file; the report to the terminal.
log="$(mktemp /tmp/zs-chaos-XXXXXX.log)"
set +e
ZS_CHAOS_CALM_S="$calm" ZS_CHAOS_KILL_S="$kills" \
  "$build/zs_e2e_serial_tests" --gtest_filter='Chaos.*' 2>"$log" | grep -v -E '^[0-9T:.-]+Z (info|warn|error) '
status=${PIPESTATUS[0]}
echo "serve's log: $log"
exit "$status"
