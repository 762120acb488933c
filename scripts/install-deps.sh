#!/usr/bin/env bash
# Installs the Debian 12 packages zeroserve builds and tests with (see ../shared/DESIGN.md).
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config \
  libgtest-dev libgmock-dev libbenchmark-dev \
  nlohmann-json3-dev libcli11-dev libicu-dev libstb-dev libwebp-dev libboost-dev \
  libyaml-cpp-dev libsqlite3-dev libssl-dev \
  clang libclang-rt-14-dev \
  slurm-wlm munge iproute2 util-linux \
  chromium chromium-driver >/dev/null
# slurm-wlm and munge: the Slurm runtime's end-to-end tests start a real cluster (munged,
# slurmctld, slurmd nodes in network namespaces: tests/e2e/serial/slurm). Debian starts their
# services where systemd runs; the tests use daemons of their own and need none of them.
# chromium and chromium-driver: the console's browser tests (docs/console.md).
# The system's CA certificates: HTTPS to the Hugging Face hub (zeroserve pull, docs/models.md).
$SUDO apt-get install -y -qq --no-install-recommends ca-certificates >/dev/null
# The official OpenAI SDK for the API compatibility tests (tests/sdk, pinned in its
# package-lock.json), with the machine's Node.js, or Debian's where there is none.
if ! command -v npm >/dev/null; then
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
(cd "$(dirname "$0")/../tests/sdk" && npm ci --no-audit --no-fund --loglevel=error)
