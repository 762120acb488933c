#pragma once
// Names of models on a Hugging Face-style hub, as config files and the command line write them:
//
//   hf:OWNER/REPO/FILE.gguf[@REVISION]   one file of a repository (FILE may hold folders)
//   hf:OWNER/REPO:QUANT[@REVISION]       the repository's GGUF file of that quantization
//                                        label (Q4_K_M, Q8_0, ...), picked as llama.cpp's -hf does
//
// REVISION defaults to "main". Pure functions: no I/O, no locks, thread-safe. Every refusal
// is kInvalidArgument with a message naming the part that is wrong.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace zs::platform {

// The prefix that marks a model name rather than a path (defined once: config, CLI, worker).
inline constexpr std::string_view kHubPrefix = "hf:";

struct ModelRef {
  std::string owner;
  std::string repo;      // the name alone, without the owner
  std::string file;      // path inside the repository; empty when `quant` names the file
  std::string quant;     // upper case ("Q4_K_M"); empty when `file` is given
  std::string revision;  // "main" unless given

  std::string repo_id() const { return owner + "/" + repo; }  // "Qwen/Qwen2.5-0.5B-Instruct-GGUF"
  // The canonical name: "hf:owner/repo/file@rev" or "hf:owner/repo:QUANT@rev" ("@main" left out).
  std::string to_string() const;
  // The same name with the file picked (quant cleared).
  ModelRef with_file(std::string picked) const;
};

// True when `text` starts with "hf:" (then it is a name, never a path).
bool is_model_ref(std::string_view text);

// Parses "hf:..."; refuses empty parts, "..", control characters, whitespace and a FILE not
// ending in ".gguf".
core::Result<ModelRef> parse_model_ref(std::string_view text);

// Which of a repository's files `quant` names: the .gguf files whose name holds the label as a
// whole word (case-insensitive; "Q4_K" does not match "Q4_K_M"), leaving out projector files
// (names starting "mmproj") and, of split files ("-00001-of-00003"), all but the first.
// kNotFound names the labels the repository has when none matches.
core::Result<std::string> pick_quant_file(const std::vector<std::string>& files, std::string_view quant);

// The projector file of a repository (a .gguf whose name starts with "mmproj"), preferring
// one of the same quantization, then F16, then any; nullopt when the repository has none.
std::optional<std::string> pick_mmproj_file(const std::vector<std::string>& files, std::string_view quant);

// The quantization labels found in `files` (for messages and `zeroserve models`).
std::vector<std::string> quant_labels(const std::vector<std::string>& files);

}  // namespace zs::platform
