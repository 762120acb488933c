#pragma once
// What the daemon and a builtin worker say to each other beyond the OpenAI API, defined once
// for both sides.
//
// - Start: the worker prints `started load_ms=<ms>` (the time its load took: open and map the
//   file, parse it, build the tokenizer and engine), then `ready <address>` when it can serve.
// - Sleep: POST kSleepPath asks an idle worker to give back its KV cache and compute threads
//   (it keeps its process, weights and tokenizer). 200 with {"released_bytes":N} when asleep,
//   409 when requests are running or waiting (nothing changes), 503 when it cannot sleep
//   (an embedding model, or still loading). Any request wakes it again.
// - A response to a request that woke a sleeping worker carries kWakeMsHeader: the
//   milliseconds from the request's arrival to the engine being ready to step.
//
// Lines any instance process may print on stdout for the fleet (a builtin worker, or the local
// handle of a cluster job such as `zeroserve slurm-instance`), one per line:
// - `started load_ms=<ms>`: its load is done (builtin workers).
// - `warmed first_pass_ms=<ms> rows=<n>`: its first forward pass in this process took <ms>
//   for <n> rows (builtin workers; the warm-up part of a cold start: a fresh process faults
//   its weights in during that pass).
// - `ready <address> [<token>]`: it serves at <address>; a runtime that learns where its
//   instance listens only once it runs (a cluster job) names the address and the instance's
//   bearer token.
// - `pending <reason>`: a scheduler holds it (the reason is the scheduler's word), until ready.
// - `retiring <seconds>`: it will end by itself in about that many seconds (a cluster job's
//   time limit): the fleet starts a replacement and drains this one before then.
// - `ran <start> <end>`: printed last, before it exits: the runtime's own record of when the
//   instance ran (Unix seconds, e.g. the scheduler's start and end of the job); the ledger
//   bills that span instead of the fleet's view.
namespace zs::worker {

inline constexpr const char* kReadyPrefix = "ready ";
inline constexpr const char* kStartedPrefix = "started ";
inline constexpr const char* kLoadMsKey = "load_ms";
inline constexpr const char* kWarmedPrefix = "warmed ";
inline constexpr const char* kFirstPassMsKey = "first_pass_ms";
inline constexpr const char* kRowsKey = "rows";
inline constexpr const char* kPendingPrefix = "pending ";
inline constexpr const char* kRetiringPrefix = "retiring ";
inline constexpr const char* kRanPrefix = "ran ";
// The request class the gateway forwards ("interactive" or "batch"); a request without it is
// interactive, so a worker run on its own behaves as before.
inline constexpr const char* kPriorityHeader = "X-Priority";
inline constexpr const char* kSleepPath = "/internal/sleep";
inline constexpr const char* kWakeMsHeader = "X-Zeroserve-Wake-Ms";

}  // namespace zs::worker
