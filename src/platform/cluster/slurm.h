#pragma once
// Slurm's own command-line interface, as the `slurm` runtime uses it: the arguments of
// `sbatch --parsable` for one instance, and the parsing of Slurm's machine-readable output
// (`sbatch --parsable`, `squeue --noheader --format` with '|' between fields). Nothing here
// scrapes Slurm's human-readable messages: where a command fails, its exit status decides and
// its stderr is only quoted to people.
//
// The names both sides of the runtime share (the files of an instance's rendezvous folder, the
// job comment that marks zeroserve's jobs) are defined here once: `zeroserve slurm-instance`
// runs beside `serve`, `zeroserve slurm-job` runs inside the Slurm job on a node.
//
// Threading: the functions are pure, apart from run_slurm_command, which blocks until the
// command ends (never call it under a lock). Failures are Status values: kInvalidArgument for
// output that does not parse, kUnavailable when a Slurm command could not run or failed
// (slurmctld unreachable: retry later), kDeadlineExceeded when it ran past its timeout.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace zs::platform::slurm {

// ---------------------------------------------------------------------------------------------
// Names shared by both sides
// ---------------------------------------------------------------------------------------------

// Files in an instance's rendezvous folder (<cluster.shared_dir>/<instance>/, mode 0700).
inline constexpr std::string_view kTokenFile = "token";          // the per-instance bearer token (0600)
inline constexpr std::string_view kAddressFile = "address";      // host:port, written by the job when ready
inline constexpr std::string_view kHeartbeatFile = "heartbeat";  // touched by slurm-instance every second
inline constexpr std::string_view kStartedFile = "started";      // Unix time (ms) the job began on its node
inline constexpr std::string_view kScriptFile = "job.sh";        // the batch script
inline constexpr std::string_view kJobLogFile = "job.log";       // the job's stdout and stderr
// Every job zeroserve submits carries the comment "<kCommentPrefix><owner>/<instance>", so that
// a restarted `serve` finds its predecessor's jobs (owner: see owner_tag).
inline constexpr std::string_view kCommentPrefix = "zeroserve/";
// `slurm-instance` speaks to the fleet in the lines of worker/worker_protocol.h ("ready",
// "pending", "retiring", "ran").

// ---------------------------------------------------------------------------------------------
// Submitting
// ---------------------------------------------------------------------------------------------

// What one instance's job asks Slurm for.
struct JobRequest {
  std::string name;       // --job-name
  std::string comment;    // --comment
  std::string partition;  // empty: the cluster's default
  std::string account;
  std::string qos;
  double time_limit_s = 0;  // 0: the partition's limit; else --time, rounded up to minutes
  int cpus_per_task = 1;
  uint64_t memory_bytes = 0;  // --mem, rounded up to MiB; 0: the partition's default
  int gpus = 0;               // --gres=gpu:N when > 0
  std::vector<std::string> extra_options;  // cluster.sbatch_options, passed as given
  std::string output_path;                 // --output
  std::string script_path;                 // the batch script
};

// The argv of `sbatch --parsable ...` for the request.
std::vector<std::string> sbatch_argv(const JobRequest& request);

// `sbatch --parsable` prints "<jobid>" or "<jobid>;<cluster>".
core::Result<std::string> parse_sbatch_output(std::string_view output);

// Slurm's --time value for seconds: minutes, rounded up, at least 1 ("90" for 5400 s).
std::string time_limit_minutes(double seconds);

// ---------------------------------------------------------------------------------------------
// Watching
// ---------------------------------------------------------------------------------------------

// The squeue fields asked for, in the order parse_squeue reads them: id, state, reason, nodes,
// start and end time, comment (last: a comment may hold '|'). Times come as Unix seconds
// because every Slurm command runs with SLURM_TIME_FORMAT=%s (slurm_env).
inline constexpr std::string_view kSqueueFormat = "%i|%T|%r|%N|%S|%e|%k";

struct JobInfo {
  std::string id;
  std::string state;   // Slurm's long name: PENDING, CONFIGURING, RUNNING, COMPLETING, ...
  std::string reason;  // why it is pending (Resources, Priority, ...); "None" otherwise
  std::string nodes;   // where it runs; empty while pending
  // Unix seconds; 0 where Slurm has none. A running job's end is when its time limit ends
  // it; an ended job's times are the ones Slurm records for it (its elapsed time is
  // end - start, as in jobcomp and sacct).
  int64_t start_s = 0;
  int64_t end_s = 0;
  std::string comment;
};

// One line per job of `squeue --noheader --format=<kSqueueFormat>`.
core::Result<std::vector<JobInfo>> parse_squeue(std::string_view output);

// True for states in which the job's processes may still run or will (pending, configuring,
// running, suspended, completing, requeued, resizing, signaling, stage-out).
bool job_is_alive(std::string_view state);

// The argv of `squeue` listing the jobs named `job_name` in every state (a job Slurm has
// forgotten is simply absent, never an error).
std::vector<std::string> squeue_argv(const std::string& job_name);
// The argv of `squeue` listing every job Slurm still knows, in every state.
std::vector<std::string> squeue_all_argv();

// The environment of every Slurm command: SLURM_CONF (when given) and SLURM_TIME_FORMAT=%s.
std::map<std::string, std::string> slurm_env(const std::string& slurm_conf);

// A short stable tag for one `serve` (its state folder): owner of the jobs it submits.
std::string owner_tag(const std::string& state_dir);

// ---------------------------------------------------------------------------------------------
// Running Slurm's commands
// ---------------------------------------------------------------------------------------------

struct CommandOutput {
  int exit_code = 0;
  std::string out;  // stdout
  std::string err;  // stderr (for messages only)
};

// Runs argv (env added to the environment, e.g. SLURM_CONF) and collects its output; blocks
// up to `timeout`, after which the command is killed (kDeadlineExceeded). A command that could
// not start is kUnavailable. A non-zero exit is returned in exit_code, not as an error.
core::Result<CommandOutput> run_slurm_command(const std::vector<std::string>& argv,
                                              const std::map<std::string, std::string>& env,
                                              std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace zs::platform::slurm
