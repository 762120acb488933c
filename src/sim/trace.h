#pragma once
// Recorded or synthetic request arrivals, in one shape whatever their source: the simulator
// replays a Trace. Readers refuse a malformed row with the file and line number, so that a
// result is never computed from half a file.
//
// Sources (see docs/simulator.md for the columns each reads):
//   azure-llm-2023     TIMESTAMP,ContextTokens,GeneratedTokens (one stream)
//   azure-functions-2019  per-minute invocation counts per function (one stream per function);
//                      a folder holding 1000_inv.csv / invocations.csv, or that file itself
//   azure-functions-2021  app,func,end_timestamp,duration (one stream per app/function)
//   burstgpt           Timestamp,Model,Request tokens,Response tokens,... (one stream per model)
//   mooncake           JSONL {"timestamp": ms, "input_length", "output_length", ...}
//   synthetic          poisson / bursty / diurnal arrivals (one stream)
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace zs::sim {

struct TraceRequest {
  double arrival_s = 0;    // from the start of the trace
  uint32_t stream = 0;     // which function / service of the trace it belongs to
  uint32_t prompt_tokens = 0;
  uint32_t output_tokens = 0;
};

struct Trace {
  std::string name;    // the source, for reports
  std::string format;  // one of the source names above
  std::vector<TraceRequest> requests;  // sorted by arrival_s
  uint32_t streams = 1;
  // The length of time the trace covers (at least the last arrival): per-minute traces cover
  // whole minutes, so that looping a one-day trace gives whole days.
  double span_s = 0;
  double origin_unix_s = 0;  // Unix time of arrival 0 where the trace records dates (else 0)
  uint64_t skipped = 0;  // rows that are not requests (e.g. BurstGPT's failed ones), counted
};

struct TraceOptions {
  uint64_t seed = 1;
  // Token sizes for sources that record arrivals only (the Azure Functions traces, synthetic).
  uint32_t default_prompt_tokens = 256;
  uint32_t default_output_tokens = 32;
};

// Reads one trace. `spec` is a path (the format is recognised from a folder's files, a
// .jsonl suffix or a CSV header), "<format>:<path>" to name the format, or a synthetic spec:
//   synthetic:poisson:rate=5,duration=1h
//   synthetic:bursty:rate=20,on=30s,off=5m,duration=1d
//   synthetic:diurnal:rate=2,amplitude=0.8,period=1d,duration=7d
// (rate in requests per second; durations as in the configuration file; optional
// prompt=N,output=N).
core::Result<Trace> load_trace(const std::string& spec, const TraceOptions& options);

// The individual readers, for tests.
core::Result<Trace> read_azure_llm_csv(const std::string& path);
core::Result<Trace> read_azure_functions_2019(const std::string& path, const TraceOptions& options);
core::Result<Trace> read_azure_functions_2021(const std::string& path, const TraceOptions& options);
core::Result<Trace> read_burstgpt_csv(const std::string& path);
core::Result<Trace> read_mooncake_jsonl(const std::string& path);
core::Result<Trace> make_synthetic(const std::string& spec, const TraceOptions& options);

}  // namespace zs::sim
