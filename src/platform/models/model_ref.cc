#include "platform/models/model_ref.h"

#include <algorithm>
#include <cctype>

namespace zs::platform {

namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string basename(std::string_view path) {
  const size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

bool ends_with_gguf(std::string_view s) {
  return s.size() > 5 && upper(s.substr(s.size() - 5)) == ".GGUF";
}

// A part of a name: letters, digits and "-_." only (the hub's own rule for owners and repos).
core::Status check_name_part(std::string_view part, std::string_view what, std::string_view text) {
  if (part.empty()) return core::Status::invalid_argument("'" + std::string(text) + "': the " + std::string(what) + " is empty");
  if (part == "." || part == "..")
    return core::Status::invalid_argument("'" + std::string(text) + "': the " + std::string(what) + " may not be '" +
                                          std::string(part) + "'");
  for (char c : part) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return core::Status::invalid_argument("'" + std::string(text) + "': the " + std::string(what) + " '" +
                                            std::string(part) + "' may hold only letters, digits, '-', '_' and '.'");
  }
  return core::Status::ok();
}

bool is_mmproj(std::string_view file) { return upper(basename(file)).rfind("MMPROJ", 0) == 0; }

// "-00002-of-00003" in the name, for a part other than the first.
bool is_later_split_part(std::string_view file) {
  const std::string name = upper(basename(file));
  const size_t of = name.find("-OF-");
  if (of == std::string::npos || of < 6) return false;
  const std::string part = name.substr(of - 5, 5);
  if (!std::all_of(part.begin(), part.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) return false;
  return part != "00001";
}

bool holds_label(std::string_view file, const std::string& label_upper) {
  const std::string name = upper(basename(file));
  for (size_t at = name.find(label_upper); at != std::string::npos; at = name.find(label_upper, at + 1)) {
    const bool left = at == 0 || !word_char(name[at - 1]);
    const size_t end = at + label_upper.size();
    const bool right = end >= name.size() || !word_char(name[end]);
    if (left && right) return true;
  }
  return false;
}

}  // namespace

std::string ModelRef::to_string() const {
  std::string s = std::string(kHubPrefix) + repo_id();
  s += quant.empty() ? "/" + file : ":" + quant;
  if (revision != "main") s += "@" + revision;
  return s;
}

ModelRef ModelRef::with_file(std::string picked) const {
  ModelRef r = *this;
  r.file = std::move(picked);
  r.quant.clear();
  return r;
}

bool is_model_ref(std::string_view text) { return text.rfind(kHubPrefix, 0) == 0; }

core::Result<ModelRef> parse_model_ref(std::string_view text) {
  const std::string shown(text.substr(0, 300));
  if (!is_model_ref(text))
    return core::Status::invalid_argument("'" + shown + "' is not a model name: names start with 'hf:' (hf:OWNER/REPO/FILE.gguf or hf:OWNER/REPO:QUANT)");
  if (text.size() > 1000) return core::Status::invalid_argument("the model name '" + shown + "...' is longer than 1000 bytes");
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      return core::Status::invalid_argument("'" + shown + "': model names may not hold spaces or control characters");
  }
  std::string_view rest = text.substr(kHubPrefix.size());
  ModelRef ref;
  ref.revision = "main";
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) {
    ref.revision = std::string(rest.substr(at + 1));
    rest = rest.substr(0, at);
    if (ref.revision.empty()) return core::Status::invalid_argument("'" + shown + "': the revision after '@' is empty");
    for (char c : ref.revision) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
        return core::Status::invalid_argument("'" + shown + "': the revision '" + ref.revision +
                                              "' may hold only letters, digits, '-', '_' and '.' (a branch, tag or commit)");
    }
  }
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos)
    return core::Status::invalid_argument("'" + shown + "': expected hf:OWNER/REPO/FILE.gguf or hf:OWNER/REPO:QUANT");
  ref.owner = std::string(rest.substr(0, slash));
  ZS_RETURN_IF_ERROR(check_name_part(ref.owner, "owner", shown));
  rest = rest.substr(slash + 1);
  const size_t file_slash = rest.find('/');
  const size_t colon = rest.find(':');
  if (file_slash == std::string_view::npos && colon == std::string_view::npos)
    return core::Status::invalid_argument("'" + shown + "': name a file (hf:" + ref.owner + "/" + std::string(rest) +
                                          "/FILE.gguf) or a quantization (hf:" + ref.owner + "/" + std::string(rest) + ":Q4_K_M)");
  if (colon != std::string_view::npos && (file_slash == std::string_view::npos || colon < file_slash)) {
    ref.repo = std::string(rest.substr(0, colon));
    ZS_RETURN_IF_ERROR(check_name_part(ref.repo, "repository", shown));
    const std::string_view quant = rest.substr(colon + 1);
    if (quant.empty()) return core::Status::invalid_argument("'" + shown + "': the quantization after ':' is empty (e.g. Q4_K_M)");
    for (char c : quant) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_')
        return core::Status::invalid_argument("'" + shown + "': the quantization '" + std::string(quant) +
                                              "' may hold only letters, digits and '_' (e.g. Q4_K_M)");
    }
    ref.quant = upper(quant);
    return ref;
  }
  ref.repo = std::string(rest.substr(0, file_slash));
  ZS_RETURN_IF_ERROR(check_name_part(ref.repo, "repository", shown));
  ref.file = std::string(rest.substr(file_slash + 1));
  size_t begin = 0;
  while (begin <= ref.file.size()) {
    size_t end = ref.file.find('/', begin);
    if (end == std::string::npos) end = ref.file.size();
    ZS_RETURN_IF_ERROR(check_name_part(std::string_view(ref.file).substr(begin, end - begin), "file path part", shown));
    begin = end + 1;
  }
  if (!ends_with_gguf(ref.file))
    return core::Status::invalid_argument("'" + shown + "': the file '" + ref.file + "' is not a .gguf file");
  return ref;
}

core::Result<std::string> pick_quant_file(const std::vector<std::string>& files, std::string_view quant) {
  const std::string label = upper(quant);
  std::vector<std::string> matches;
  for (const auto& f : files) {
    if (!ends_with_gguf(f) || is_mmproj(f) || is_later_split_part(f)) continue;
    if (holds_label(f, label)) matches.push_back(f);
  }
  if (matches.empty()) {
    const auto labels = quant_labels(files);
    std::string have;
    for (const auto& l : labels) have += (have.empty() ? "" : ", ") + l;
    return core::Status::not_found("no GGUF file of quantization " + label + " in the repository" +
                                   (have.empty() ? " (it holds no GGUF model files)" : " (it has: " + have + ")"));
  }
  // The shortest name: "model-Q4_K_M.gguf" before "model-Q4_K_M-imatrix-experimental.gguf".
  std::sort(matches.begin(), matches.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  return matches.front();
}

std::optional<std::string> pick_mmproj_file(const std::vector<std::string>& files, std::string_view quant) {
  std::vector<std::string> projectors;
  for (const auto& f : files)
    if (ends_with_gguf(f) && is_mmproj(f)) projectors.push_back(f);
  if (projectors.empty()) return std::nullopt;
  std::sort(projectors.begin(), projectors.end());
  for (const auto& label : std::vector<std::string>{upper(quant), "F16"})
    for (const auto& p : projectors)
      if (!label.empty() && holds_label(p, label)) return p;
  return projectors.front();
}

std::vector<std::string> quant_labels(const std::vector<std::string>& files) {
  std::vector<std::string> labels;
  for (const auto& f : files) {
    if (!ends_with_gguf(f) || is_mmproj(f)) continue;
    std::string name = upper(basename(f));
    name.resize(name.size() - 5);
    size_t begin = 0;
    while (begin < name.size()) {
      size_t end = name.find_first_of("-.", begin);
      if (end == std::string::npos) end = name.size();
      const std::string token = name.substr(begin, end - begin);
      const bool quant = (token.size() >= 2 && (token[0] == 'Q' || (token[0] == 'I' && token[1] == 'Q')) &&
                          std::isdigit(static_cast<unsigned char>(token[token[0] == 'I' ? 2 : 1]))) ||
                         token == "F16" || token == "BF16" || token == "F32";
      if (quant && std::find(labels.begin(), labels.end(), token) == labels.end()) labels.push_back(token);
      begin = end + 1;
    }
  }
  std::sort(labels.begin(), labels.end());
  return labels;
}

}  // namespace zs::platform
