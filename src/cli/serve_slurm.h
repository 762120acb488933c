#pragma once
// How `serve` runs `runtime: slurm` deployments (docs/cluster.md): each instance is a local
// `zeroserve slurm-instance` process (the fleet's handle, like a worker process) that submits,
// watches and cancels the instance's Slurm job. These helpers build that process's command
// line from the configuration and clean up after a predecessor.
//
// Threading: plain functions. cancel_leftover_jobs runs Slurm commands and blocks (call it
// before the fleet starts, never under a lock). It logs what it could not do; a Slurm that
// cannot be reached is not fatal (the jobs end themselves when their heartbeat stops).
#include <string>
#include <vector>

#include "platform/config/config.h"
#include "platform/fleet/fleet_core.h"
#include "platform/ledger/cost_ledger.h"

namespace zs::cli {

// The fleet's spec of a slurm deployment: `worker_args` is the worker's command line on the
// node (without --listen); `exe` is this executable (the local slurm-instance, and the
// node's zeroserve unless cluster.zeroserve_path says otherwise).
platform::DeploymentSpec slurm_spec(const platform::Config& config, const platform::DeploymentConfig& d,
                                    uint64_t memory_bytes, const platform::DeviceConfig* device, const std::string& exe,
                                    std::vector<std::string> worker_args);

// Cancels the jobs a previous `serve` with the same state folder left running (marked with its
// owner tag), waits (up to 30 s) until Slurm has ended them, and gives their runs in `ledger`
// (when not null) Slurm's start and end times; returns how many it cancelled.
int cancel_leftover_jobs(const platform::ClusterConfig& cluster, const std::string& state_dir,
                         platform::CostLedger* ledger);

}  // namespace zs::cli
