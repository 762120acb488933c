#!/usr/bin/env bash
# Saves a screenshot of each console page to docs/images/console/ by running the browser tests
# (tests/e2e/serial/console_browser_test.cc) with ZS_CONSOLE_SCREENSHOTS set. Needs a build
# (cmake --build build --target zeroserve zs_e2e_serial_tests) and scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/docs/images/console"
mkdir -p "$out"
ZS_CONSOLE_SCREENSHOTS="$out" ./build/zs_e2e_serial_tests --gtest_filter='ConsoleInTheBrowser.*'
ls -l "$out"
