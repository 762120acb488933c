#include "gateway/openai/openai_request.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "gateway/openai/base64.h"

namespace zs::gateway::openai {

using nlohmann::json;

namespace {

// Thrown inside this file only, to unwind from a nested field to the entry point, which turns
// it into a Status and an ApiError.
struct Invalid {
  std::string param;
  std::string message;
  std::string code;
};

[[noreturn]] void fail(const std::string& param, const std::string& message,
                       const std::string& code = "invalid_value") {
  throw Invalid{param, message, code};
}

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "a number";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "an unexpected value";
  }
}

[[noreturn]] void wrong_type(const std::string& param, const json& v, const std::string& expected) {
  fail(param, "'" + param + "' must be " + expected + ", got " + type_name(v), "invalid_type");
}

// Nesting depth of the JSON text, counted before parsing so that a hostile body of a million
// '[' is refused cheaply. Brackets inside strings do not count.
size_t json_depth(const std::string& text) {
  size_t depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') max_depth = std::max(max_depth, ++depth);
    else if ((c == ']' || c == '}') && depth > 0) --depth;
  }
  return max_depth;
}

// Finds the field that holds a number too large for a double (JSON allows 1e999; no field does),
// so that the refusal names it: "top_p", "messages[0].content" and so on. Runs on the error path only.
class OverflowFinder : public nlohmann::json_sax<json> {
 public:
  std::string path;  // of the value being parsed when the error came

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override { return open(false); }
  bool key(string_t& k) override {
    stack_.back().key = k;
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(true); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    path = current();
    return false;
  }

 private:
  struct Level {
    bool array = false;
    size_t index = 0;
    std::string key;
  };
  std::string current() const {
    std::string p;
    for (const auto& l : stack_) {
      if (l.array) p += "[" + std::to_string(l.index) + "]";
      else p += (p.empty() ? "" : ".") + l.key;
    }
    return p;
  }
  bool value() {
    if (!stack_.empty() && stack_.back().array) ++stack_.back().index;
    return true;
  }
  bool open(bool array) {
    stack_.push_back({array, 0, ""});
    return true;
  }
  bool close() {
    stack_.pop_back();
    return value();
  }
  std::vector<Level> stack_;
};

json parse_body(const std::string& body, const Limits& limits) {
  if (body.empty()) fail("", "the request body is empty; expected a JSON object", "invalid_json");
  if (json_depth(body) > limits.max_json_depth) {
    fail("", "the request body nests arrays/objects deeper than " +
                 std::to_string(limits.max_json_depth) + " levels", "invalid_json");
  }
  json doc;
  try {
    doc = json::parse(body);
  } catch (const json::parse_error& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 9: ...".
    std::string what = e.what();
    size_t pos = what.find("] ");
    if (pos != std::string::npos) what = what.substr(pos + 2);
    // e.byte counts the bytes read, the offending one included; offsets here are 0-based.
    size_t offset = e.byte > 0 ? e.byte - 1 : 0;
    fail("", "the request body is not valid JSON (at byte offset " + std::to_string(offset) + "): " + what,
         "invalid_json");
  } catch (const json::out_of_range& e) {  // a number beyond a double's range
    OverflowFinder finder;
    (void)json::sax_parse(body, &finder);
    fail(finder.path, "'" + finder.path + "' holds a number too large to represent (beyond about 1.8e308)");
  }
  if (!doc.is_object()) {
    fail("", std::string("the request body must be a JSON object, got ") + type_name(doc), "invalid_json");
  }
  return doc;
}

// The field's value, or nullptr when absent or null (OpenAI treats null as "not given").
const json* field(const json& obj, const char* name) {
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string get_string(const json& obj, const char* name, const std::string& param, bool required) {
  const json* v = field(obj, name);
  if (!v) {
    if (required) fail(param, "'" + param + "' is required", "missing_required_parameter");
    return "";
  }
  if (!v->is_string()) wrong_type(param, *v, "a string");
  return v->get<std::string>();
}

std::optional<bool> get_bool(const json& obj, const char* name) {
  const json* v = field(obj, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) wrong_type(name, *v, "a boolean");
  return v->get<bool>();
}

std::optional<int64_t> get_int(const json& obj, const char* name, int64_t lo, int64_t hi) {
  const json* v = field(obj, name);
  if (!v) return std::nullopt;
  int64_t x = 0;
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(hi)) {
      fail(name, "'" + std::string(name) + "' must be at most " + std::to_string(hi) + ", got " +
                     std::to_string(u));
    }
    x = static_cast<int64_t>(u);
  } else if (v->is_number_integer()) {
    x = v->get<int64_t>();
  } else if (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>() &&
             std::abs(v->get<double>()) < 9e15) {
    x = static_cast<int64_t>(v->get<double>());  // 1.0 is an integer to JavaScript clients
  } else {
    wrong_type(name, *v, "an integer");
  }
  if (x < lo || x > hi) {
    fail(name, "'" + std::string(name) + "' must be in [" + std::to_string(lo) + ", " +
                   std::to_string(hi) + "], got " + std::to_string(x));
  }
  return x;
}

std::string format_number(double x) {
  std::string s = json(x).dump();
  return s;
}

// A number in [lo, hi] (or (lo, hi] when lo_open).
std::optional<double> get_number(const json& obj, const char* name, double lo, double hi,
                                 bool lo_open = false) {
  const json* v = field(obj, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(name, *v, "a number");
  double x = v->get<double>();
  bool ok = std::isfinite(x) && (lo_open ? x > lo : x >= lo) && x <= hi;
  if (!ok) {
    fail(name, "'" + std::string(name) + "' must be in " + (lo_open ? "(" : "[") + format_number(lo) +
                   ", " + format_number(hi) + "], got " + format_number(x));
  }
  return x;
}

void parse_stop(const json& obj, const Limits& limits, std::vector<std::string>* out) {
  const json* v = field(obj, "stop");
  if (!v) return;
  auto check = [&](const json& s, const std::string& param) {
    if (!s.is_string()) wrong_type(param, s, "a string");
    std::string text = s.get<std::string>();
    if (text.empty()) fail(param, "'" + param + "' must not be an empty string");
    if (text.size() > limits.max_stop_length) {
      fail(param, "'" + param + "' is longer than " + std::to_string(limits.max_stop_length) + " bytes");
    }
    out->push_back(std::move(text));
  };
  if (v->is_string()) {
    check(*v, "stop");
  } else if (v->is_array()) {
    if (v->size() > limits.max_stop_sequences) {
      fail("stop", "'stop' holds " + std::to_string(v->size()) + " sequences; at most " +
                       std::to_string(limits.max_stop_sequences) + " are allowed");
    }
    for (size_t i = 0; i < v->size(); ++i) check((*v)[i], "stop[" + std::to_string(i) + "]");
  } else {
    wrong_type("stop", *v, "a string or an array of strings");
  }
}

[[noreturn]] void unsupported(const std::string& param, const std::string& message) {
  fail(param, message, "unsupported_parameter");
}

// Fields shared by both endpoints: sampling, stopping, streaming, and the ones refused.
void parse_common(const json& doc, const Limits& limits, SamplingOptions* s, bool* stream,
                  bool* include_usage, std::string* user, bool chat, LogprobsOption* logprobs) {
  *stream = get_bool(doc, "stream").value_or(false);
  if (const json* so = field(doc, "stream_options")) {
    if (!so->is_object()) wrong_type("stream_options", *so, "an object");
    if (!*stream) {
      fail("stream_options", "'stream_options' is only allowed when 'stream' is true");
    }
    if (const json* iu = field(*so, "include_usage")) {
      if (!iu->is_boolean()) wrong_type("stream_options.include_usage", *iu, "a boolean");
      *include_usage = iu->get<bool>();
    }
  }

  auto max_completion = get_int(doc, "max_completion_tokens", 1, limits.max_tokens);
  auto max_tokens = get_int(doc, "max_tokens", 1, limits.max_tokens);
  if (max_completion) s->max_tokens = static_cast<int>(*max_completion);
  else if (max_tokens) s->max_tokens = static_cast<int>(*max_tokens);

  s->temperature = get_number(doc, "temperature", 0, 2);
  s->top_p = get_number(doc, "top_p", 0, 1, /*lo_open=*/true);
  s->seed = get_int(doc, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
  parse_stop(doc, limits, &s->stop);
  s->presence_penalty = get_number(doc, "presence_penalty", -2, 2).value_or(0);
  s->frequency_penalty = get_number(doc, "frequency_penalty", -2, 2).value_or(0);
  if (auto k = get_int(doc, "top_k", 0, 1 << 20)) s->top_k = static_cast<int>(*k);
  s->min_p = get_number(doc, "min_p", 0, 1);
  s->repeat_penalty = get_number(doc, "repetition_penalty", 0, 10, /*lo_open=*/true);
  if (auto rp = get_number(doc, "repeat_penalty", 0, 10, /*lo_open=*/true)) s->repeat_penalty = rp;
  // The same rule the engine applies, on the values it will see (a denormal top_p is 0 as a float).
  if (auto bad = s->to_params().invalid_field()) {
    std::string name = bad->field;  // as the client spelled it
    if (name == "repeat_penalty" && !field(doc, "repeat_penalty")) name = "repetition_penalty";
    const json* given = field(doc, name.c_str());
    fail(name, bad->message + ", got " + (given ? given->dump() : std::string("nothing")) +
                   " (sampling uses 32-bit floats)");
  }

  if (auto n = get_int(doc, "n", 1, limits.max_choices)) s->n = static_cast<int>(*n);
  if (const json* lp = field(doc, "logprobs")) {
    if (chat) {
      // Chat: a boolean, with top_logprobs (0..20) alternatives per token.
      if (!lp->is_boolean()) wrong_type("logprobs", *lp, "a boolean");
      if (lp->get<bool>()) logprobs->top = 0;
    } else {
      // Legacy completions: the number of alternatives per token (OpenAI allows up to 5; 20 here).
      if (!lp->is_number() && !lp->is_boolean()) wrong_type("logprobs", *lp, "an integer");
      if (lp->is_boolean()) wrong_type("logprobs", *lp, "an integer");
      logprobs->top = static_cast<int>(*get_int(doc, "logprobs", 0, 20));
    }
  }
  if (chat) {
    if (auto tl = get_int(doc, "top_logprobs", 0, 20)) {
      if (!logprobs->wanted() && *tl > 0)
        fail("top_logprobs", "'top_logprobs' needs 'logprobs': true");
      if (logprobs->wanted()) logprobs->top = static_cast<int>(*tl);
    }
  }
  if (const json* lb = field(doc, "logit_bias")) {
    if (!lb->is_object()) wrong_type("logit_bias", *lb, "an object");
    if (lb->size() > 1024) fail("logit_bias", "'logit_bias' holds " + std::to_string(lb->size()) + " entries; at most 1024");
    for (const auto& [key, value] : lb->items()) {
      const std::string p = "logit_bias." + key;
      if (key.empty() || key.size() > 10 || !std::all_of(key.begin(), key.end(), ::isdigit) ||
          std::stoll(key) > std::numeric_limits<int32_t>::max())
        fail("logit_bias", "'logit_bias' keys must be token ids (non-negative integers), got \"" + key + "\"");
      if (!value.is_number()) wrong_type(p, value, "a number");
      const double b = value.get<double>();
      if (!(b >= -100 && b <= 100)) fail(p, "'" + p + "' must be in [-100, 100], got " + value.dump());
      s->logit_bias.emplace_back(static_cast<int32_t>(std::stoll(key)), b);
    }
  }
  if (const json* u = field(doc, "user")) {
    if (!u->is_string()) wrong_type("user", *u, "a string");
    *user = u->get<std::string>();
  }
  // "priority", "metadata", "store", "service_tier" and unknown fields are accepted and
  // ignored, as OpenAI-compatible servers commonly do.
}

bool valid_function_name(const std::string& n) {
  return !n.empty() && n.size() <= 64 && std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

void parse_tools(const json& doc, const std::string& body, ChatRequest* req) {
  if (const json* tools = field(doc, "tools")) {
    if (!tools->is_array()) wrong_type("tools", *tools, "an array");
    std::optional<nlohmann::ordered_json> ordered;  // for the parameters in the client's key order
    for (size_t i = 0; i < tools->size(); ++i) {
      const std::string p = "tools[" + std::to_string(i) + "]";
      const json& t = (*tools)[i];
      if (!t.is_object()) wrong_type(p, t, "an object");
      const std::string type = get_string(t, "type", p + ".type", /*required=*/true);
      if (type != "function") unsupported(p + ".type", "'" + p + ".type' must be \"function\", got \"" + type + "\"");
      const json* f = field(t, "function");
      if (!f) fail(p + ".function", "'" + p + ".function' is required", "missing_required_parameter");
      if (!f->is_object()) wrong_type(p + ".function", *f, "an object");
      ToolDefinition def;
      def.name = get_string(*f, "name", p + ".function.name", /*required=*/true);
      if (!valid_function_name(def.name))
        fail(p + ".function.name", "'" + p + ".function.name' must be 1 to 64 letters, digits, underscores or dashes");
      for (const auto& other : req->tools)
        if (other.name == def.name) fail(p + ".function.name", "two tools are named \"" + def.name + "\"");
      def.description = get_string(*f, "description", p + ".function.description", /*required=*/false);
      if (const json* strict = field(*f, "strict")) {
        if (!strict->is_boolean()) wrong_type(p + ".function.strict", *strict, "a boolean");
        def.strict = strict->get<bool>();
      }
      if (const json* params = field(*f, "parameters")) {
        if (!params->is_object()) wrong_type(p + ".function.parameters", *params, "an object");
        if (!ordered) ordered = nlohmann::ordered_json::parse(body);
        def.parameters = (*ordered)["tools"][i]["function"]["parameters"].dump();
      }
      req->tools.push_back(std::move(def));
    }
  }
  req->tool_choice.mode = req->tools.empty() ? ToolChoice::Mode::kNone : ToolChoice::Mode::kAuto;
  if (const json* tc = field(doc, "tool_choice")) {
    if (tc->is_string()) {
      const std::string m = tc->get<std::string>();
      if (m == "none") req->tool_choice.mode = ToolChoice::Mode::kNone;
      else if (m == "auto") req->tool_choice.mode = ToolChoice::Mode::kAuto;
      else if (m == "required") req->tool_choice.mode = ToolChoice::Mode::kRequired;
      else fail("tool_choice", "'tool_choice' must be \"none\", \"auto\", \"required\" or a named function, got \"" + m + "\"");
    } else if (tc->is_object()) {
      const json* f = field(*tc, "function");
      if (!f || !f->is_object()) fail("tool_choice.function", "'tool_choice.function' with a 'name' is required",
                                      "missing_required_parameter");
      req->tool_choice.mode = ToolChoice::Mode::kFunction;
      req->tool_choice.function = get_string(*f, "name", "tool_choice.function.name", /*required=*/true);
      bool found = false;
      for (const auto& t : req->tools) found |= t.name == req->tool_choice.function;
      if (!found)
        fail("tool_choice.function.name", "'tool_choice' names function \"" + req->tool_choice.function +
                                              "\", which is not in 'tools'");
    } else {
      wrong_type("tool_choice", *tc, "a string or an object");
    }
    if (req->tools.empty() && req->tool_choice.mode != ToolChoice::Mode::kNone)
      fail("tool_choice", "'tool_choice' other than \"none\" needs 'tools'");
  }
  if (auto p = get_bool(doc, "parallel_tool_calls")) req->parallel_tool_calls = *p;
}

void refuse_chat_only_features(const json& doc, const std::string& body, OutputFormat* format) {
  if (field(doc, "functions")) unsupported("functions", "function calling is not supported; omit 'functions'");
  if (field(doc, "function_call")) {
    unsupported("function_call", "function calling is not supported; omit 'function_call'");
  }
  if (const json* rf = field(doc, "response_format")) {
    if (!rf->is_object()) wrong_type("response_format", *rf, "an object");
    const json* type = field(*rf, "type");
    if (!type || !type->is_string()) {
      fail("response_format.type", "'response_format.type' is required and must be a string");
    }
    const std::string t = type->get<std::string>();
    if (t == "json_object") {
      format->type = OutputFormat::Type::kJsonObject;
    } else if (t == "json_schema") {
      format->type = OutputFormat::Type::kJsonSchema;
      const json* js = field(*rf, "json_schema");
      if (!js) fail("response_format.json_schema", "'response_format.json_schema' is required for type \"json_schema\"",
                    "missing_required_parameter");
      if (!js->is_object()) wrong_type("response_format.json_schema", *js, "an object");
      format->schema_name = get_string(*js, "name", "response_format.json_schema.name", /*required=*/true);
      if (format->schema_name.empty() || format->schema_name.size() > 64 ||
          !std::all_of(format->schema_name.begin(), format->schema_name.end(),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; }))
        fail("response_format.json_schema.name",
             "'response_format.json_schema.name' must be 1 to 64 letters, digits, underscores or dashes");
      if (const json* strict = field(*js, "strict")) {
        if (!strict->is_boolean()) wrong_type("response_format.json_schema.strict", *strict, "a boolean");
        format->strict = strict->get<bool>();
      }
      const json* schema = field(*js, "schema");
      if (!schema) {
        format->schema = "{}";  // OpenAI: absent means any JSON value
      } else {
        if (!schema->is_object() && !schema->is_boolean())
          wrong_type("response_format.json_schema.schema", *schema, "an object");
        // Again with keys in the order sent: properties are generated in the schema's order.
        const auto ordered = nlohmann::ordered_json::parse(body);
        format->schema = ordered["response_format"]["json_schema"]["schema"].dump();
      }
    } else if (t != "text") {
      fail("response_format.type", "'response_format.type' must be \"text\", \"json_object\" or \"json_schema\", got \"" +
                                       t + "\"");
    }
  }
  if (field(doc, "audio")) unsupported("audio", "audio output is not supported; omit 'audio'");
  if (const json* mod = field(doc, "modalities")) {
    if (!mod->is_array()) wrong_type("modalities", *mod, "an array");
    for (const auto& m : *mod) {
      if (!m.is_string() || m.get<std::string>() != "text") {
        unsupported("modalities", "only the \"text\" output modality is supported");
      }
    }
  }
}

// "grammar": GBNF text constraining the output (llama.cpp's server parameter); compiled by the
// worker, which names any error in it.
void parse_grammar(const json& doc, OutputFormat* format) {
  const json* g = field(doc, "grammar");
  if (!g || g->is_null()) return;
  if (!g->is_string()) wrong_type("grammar", *g, "a string");
  if (g->get<std::string>().empty()) return;
  if (format->type != OutputFormat::Type::kText)
    unsupported("grammar", "'grammar' cannot be combined with a 'response_format' other than \"text\"");
  format->type = OutputFormat::Type::kGrammar;
  format->grammar = g->get<std::string>();
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

ImageInput parse_image_part(const json& part, const std::string& param, const Limits& limits) {
  const json* iu = field(part, "image_url");
  if (!iu) fail(param + ".image_url", "'" + param + ".image_url' is required", "missing_required_parameter");
  std::string url_param = param + ".image_url.url";
  std::string url;
  std::string detail = "auto";
  if (iu->is_string()) {  // some clients send the URL directly
    url = iu->get<std::string>();
    url_param = param + ".image_url";
  } else if (iu->is_object()) {
    url = get_string(*iu, "url", url_param, /*required=*/true);
    std::string d = get_string(*iu, "detail", param + ".image_url.detail", /*required=*/false);
    if (!d.empty()) {
      if (d != "auto" && d != "low" && d != "high") {
        fail(param + ".image_url.detail", "'" + param + ".image_url.detail' must be \"auto\", \"low\" or \"high\", got \"" + d + "\"");
      }
      detail = d;
    }
  } else {
    wrong_type(param + ".image_url", *iu, "an object with a 'url'");
  }
  ImageInput image;
  if (starts_with(url, "data:")) {
    auto decoded = parse_image_data_url(url, limits.max_image_bytes);
    if (!decoded) fail(url_param, "'" + url_param + "': " + decoded.status().message(), "invalid_image_url");
    image = std::move(decoded.value());
  } else if (starts_with(url, "http://") || starts_with(url, "https://")) {
    image.url = url;
  } else {
    std::string shown = url.substr(0, 32);
    fail(url_param, "'" + url_param + "' must be a data: URL (data:image/png;base64,...) or an http(s) URL, got \"" +
                        shown + (url.size() > 32 ? "...\"" : "\""),
         "invalid_image_url");
  }
  image.detail = detail;
  return image;
}

ChatMessage parse_message(const json& m, size_t index, const Limits& limits, size_t* images) {
  std::string param = "messages[" + std::to_string(index) + "]";
  if (!m.is_object()) wrong_type(param, m, "an object");
  ChatMessage msg;
  std::string role = get_string(m, "role", param + ".role", /*required=*/true);
  if (role == "system" || role == "developer") {
    msg.role = Role::kSystem;
  } else if (role == "user") {
    msg.role = Role::kUser;
  } else if (role == "assistant") {
    msg.role = Role::kAssistant;
  } else if (role == "tool") {
    msg.role = Role::kTool;
    msg.tool_call_id = get_string(m, "tool_call_id", param + ".tool_call_id", /*required=*/true);
  } else if (role == "function") {
    unsupported(param + ".role", "'" + param + ".role' \"function\" (the legacy function calling) is not supported; use \"tool\"");
  } else {
    fail(param + ".role", "'" + param + ".role' must be \"system\", \"user\", \"assistant\" or \"tool\", got \"" + role + "\"");
  }
  msg.name = get_string(m, "name", param + ".name", /*required=*/false);
  if (const json* tc = field(m, "tool_calls")) {
    const std::string tp = param + ".tool_calls";
    if (msg.role != Role::kAssistant) fail(tp, "'" + tp + "' is only allowed in assistant messages");
    if (!tc->is_array()) wrong_type(tp, *tc, "an array");
    for (size_t k = 0; k < tc->size(); ++k) {
      const std::string cp = tp + "[" + std::to_string(k) + "]";
      const json& c = (*tc)[k];
      if (!c.is_object()) wrong_type(cp, c, "an object");
      ToolCallRef ref;
      ref.id = get_string(c, "id", cp + ".id", /*required=*/true);
      const std::string type = get_string(c, "type", cp + ".type", /*required=*/false);
      if (!type.empty() && type != "function") fail(cp + ".type", "'" + cp + ".type' must be \"function\"");
      const json* f = field(c, "function");
      if (!f || !f->is_object()) fail(cp + ".function", "'" + cp + ".function' is required", "missing_required_parameter");
      ref.name = get_string(*f, "name", cp + ".function.name", /*required=*/true);
      ref.arguments = get_string(*f, "arguments", cp + ".function.arguments", /*required=*/false);
      if (ref.arguments.empty()) ref.arguments = "{}";
      msg.tool_calls.push_back(std::move(ref));
    }
  }

  std::string cparam = param + ".content";
  const json* content = field(m, "content");
  if (!content) {
    if (msg.role == Role::kAssistant) return msg;  // an assistant turn may be empty (or only calls)
    fail(cparam, "'" + cparam + "' is required", "missing_required_parameter");
  }
  if (content->is_string()) {
    msg.content.push_back(ContentPart{ContentPart::Type::kText, content->get<std::string>(), {}});
    return msg;
  }
  if (!content->is_array()) wrong_type(cparam, *content, "a string or an array of content parts");
  if (content->empty()) fail(cparam, "'" + cparam + "' must not be an empty array");
  if (content->size() > limits.max_content_parts) {
    fail(cparam, "'" + cparam + "' holds " + std::to_string(content->size()) + " parts; at most " +
                     std::to_string(limits.max_content_parts) + " are allowed");
  }
  for (size_t j = 0; j < content->size(); ++j) {
    const json& part = (*content)[j];
    std::string pparam = cparam + "[" + std::to_string(j) + "]";
    if (!part.is_object()) wrong_type(pparam, part, "an object");
    std::string type = get_string(part, "type", pparam + ".type", /*required=*/true);
    if (type == "text") {
      ContentPart p;
      p.text = get_string(part, "text", pparam + ".text", /*required=*/true);
      msg.content.push_back(std::move(p));
    } else if (type == "image_url") {
      if (msg.role != Role::kUser) {
        fail(pparam + ".type", "images are only allowed in user messages ('" + param + ".role' is \"" + role + "\")");
      }
      if (++*images > limits.max_images) {
        fail(pparam, "the request holds more than " + std::to_string(limits.max_images) + " images", "too_many_images");
      }
      ContentPart p;
      p.type = ContentPart::Type::kImage;
      p.image = parse_image_part(part, pparam, limits);
      msg.content.push_back(std::move(p));
    } else {
      unsupported(pparam + ".type", "content part type \"" + type + "\" is not supported; use \"text\" or \"image_url\"");
    }
  }
  return msg;
}

// One token id: an integer in [0, 2^31). 1.0 counts as an integer, as elsewhere.
int32_t token_id(const json& v, const std::string& param) {
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(kMax))
      fail(param,
           "'" + param + "' is not a token id: " + std::to_string(u) + " is larger than " + std::to_string(kMax));
    return static_cast<int32_t>(u);
  }
  if (v.is_number_integer()) {
    const int64_t x = v.get<int64_t>();
    if (x < 0 || x > kMax)
      fail(param,
           "'" + param + "' is not a token id: " + std::to_string(x) + " is out of [0, " + std::to_string(kMax) + "]");
    return static_cast<int32_t>(x);
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!(std::floor(d) == d && d >= 0 && d <= static_cast<double>(kMax)))
      fail(param, "'" + param + "' is not a token id: " + format_number(d) + " is not an integer in [0, " +
                      std::to_string(kMax) + "]");
    return static_cast<int32_t>(d);
  }
  wrong_type(param, v, "a token id (an integer)");
}

// A non-empty array of token ids as one input; `param` names the array.
EmbeddingInput token_input(const json& v, const std::string& param) {
  if (!v.is_array()) wrong_type(param, v, "an array of token ids (every element of 'input' must be of the same kind)");
  if (v.empty()) fail(param, "'" + param + "' must not be an empty array of token ids");
  EmbeddingInput in;
  in.is_tokens = true;
  in.tokens.reserve(v.size());
  for (size_t j = 0; j < v.size(); ++j) in.tokens.push_back(token_id(v[j], param + "[" + std::to_string(j) + "]"));
  return in;
}

EmbeddingInput text_input(const json& v, const std::string& param) {
  if (!v.is_string()) wrong_type(param, v, "a string (every element of 'input' must be of the same kind)");
  EmbeddingInput in;
  in.text = v.get<std::string>();
  if (in.text.empty()) fail(param, "'" + param + "' must not be an empty string");
  return in;
}

std::vector<EmbeddingInput> parse_embedding_inputs(const json& doc, const Limits& limits, bool* single) {
  const json* input = field(doc, "input");
  if (!input) fail("input", "'input' is required", "missing_required_parameter");
  std::vector<EmbeddingInput> out;
  *single = true;
  if (input->is_string()) {
    out.push_back(text_input(*input, "input"));
    return out;
  }
  if (!input->is_array())
    wrong_type("input", *input,
               "a string, an array of strings, an array of token ids or an array of arrays of token ids");
  if (input->empty()) fail("input", "'input' must not be an empty array");
  const json& first = (*input)[0];
  if (first.is_number()) {  // one input given as token ids
    out.push_back(token_input(*input, "input"));
    return out;
  }
  *single = false;
  if (input->size() > limits.max_embedding_inputs) {
    fail("input", "'input' holds " + std::to_string(input->size()) + " inputs; at most " +
                      std::to_string(limits.max_embedding_inputs) + " are allowed");
  }
  if (!first.is_string() && !first.is_array())
    wrong_type("input[0]", first, "a string, a token id or an array of token ids");
  out.reserve(input->size());
  for (size_t i = 0; i < input->size(); ++i) {
    const std::string param = "input[" + std::to_string(i) + "]";
    out.push_back(first.is_string() ? text_input((*input)[i], param) : token_input((*input)[i], param));
  }
  return out;
}

template <typename T, typename Fn>
core::Result<T> run_parser(Fn&& fn, ApiError* error) {
  try {
    return fn();
  } catch (const Invalid& e) {
    if (error) {
      *error = ApiError{};
      error->message = e.message;
      error->param = e.param;
      error->code = e.code;
    }
    return core::Status::invalid_argument(e.message);
  } catch (const std::exception& e) {
    // A json type error would mean a missed check above; still a clean 400, not a crash.
    if (error) {
      *error = ApiError{};
      error->message = std::string("invalid request: ") + e.what();
    }
    return core::Status::invalid_argument(std::string("invalid request: ") + e.what());
  }
}

}  // namespace

core::SamplingParams SamplingOptions::to_params() const {
  core::SamplingParams p;
  p.temperature = static_cast<float>(temperature.value_or(1.0));
  p.top_p = static_cast<float>(top_p.value_or(1.0));
  p.top_k = top_k.value_or(0);
  p.min_p = static_cast<float>(min_p.value_or(0.0));
  p.repeat_penalty = static_cast<float>(repeat_penalty.value_or(1.0));
  p.presence_penalty = static_cast<float>(presence_penalty);
  p.frequency_penalty = static_cast<float>(frequency_penalty);
  p.seed = seed ? static_cast<uint64_t>(*seed) : 0;
  return p;
}

const char* role_name(Role role) {
  switch (role) {
    case Role::kSystem: return "system";
    case Role::kUser: return "user";
    case Role::kAssistant: return "assistant";
    case Role::kTool: return "tool";
  }
  return "user";
}

std::string ChatMessage::text() const {
  std::string out;
  for (const auto& p : content) {
    if (p.type == ContentPart::Type::kText) out += p.text;
  }
  return out;
}

size_t ChatRequest::image_count() const {
  size_t n = 0;
  for (const auto& m : messages) {
    for (const auto& p : m.content) n += p.type == ContentPart::Type::kImage;
  }
  return n;
}

bool ChatRequest::has_remote_images() const {
  for (const auto& m : messages) {
    for (const auto& p : m.content) {
      if (p.type == ContentPart::Type::kImage && p.image.is_remote()) return true;
    }
  }
  return false;
}

std::optional<ApiError> remote_image_error(const ChatRequest& request) {
  for (size_t i = 0; i < request.messages.size(); ++i) {
    const auto& content = request.messages[i].content;
    for (size_t j = 0; j < content.size(); ++j) {
      if (content[j].type == ContentPart::Type::kImage && content[j].image.is_remote()) {
        ApiError e;
        e.message = std::string(kRemoteImageRefused) + "; send the image inline as a data: URL";
        e.param = "messages[" + std::to_string(i) + "].content[" + std::to_string(j) + "].image_url.url";
        e.code = "remote_image_url";
        return e;
      }
    }
  }
  return std::nullopt;
}

core::Result<ImageInput> parse_image_data_url(const std::string& url, size_t max_bytes) {
  // data:[<mediatype>][;param=value]*[;base64],<data>
  if (!starts_with(url, "data:")) return core::Status::invalid_argument("not a data: URL");
  size_t comma = url.find(',');
  if (comma == std::string::npos) return core::Status::invalid_argument("data: URL without ',' before the data");
  std::string meta = url.substr(5, comma - 5);
  std::vector<std::string> params;
  size_t start = 0;
  while (true) {
    size_t semi = meta.find(';', start);
    params.push_back(meta.substr(start, semi == std::string::npos ? std::string::npos : semi - start));
    if (semi == std::string::npos) break;
    start = semi + 1;
  }
  std::string mime = params[0];
  for (char& c : mime) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!starts_with(mime, "image/")) {
    return core::Status::invalid_argument("data: URL media type must be image/..., got \"" + params[0] + "\"");
  }
  if (params.size() < 2 || params.back() != "base64") {
    return core::Status::invalid_argument("data: URL must be base64-encoded (data:" + params[0] + ";base64,...)");
  }
  std::string_view payload(url);
  payload.remove_prefix(comma + 1);
  // Reject before decoding when the encoded size already says it is too large.
  if (payload.size() / 4 * 3 > max_bytes + 3) {
    return core::Status::invalid_argument("image of about " + std::to_string(payload.size() / 4 * 3) +
                               " bytes exceeds the limit of " + std::to_string(max_bytes) + " bytes");
  }
  auto bytes = base64_decode(payload);
  if (!bytes) return bytes.status();
  if (bytes->empty()) return core::Status::invalid_argument("data: URL holds no image bytes");
  if (bytes->size() > max_bytes) {
    return core::Status::invalid_argument("image of " + std::to_string(bytes->size()) + " bytes exceeds the limit of " +
                               std::to_string(max_bytes) + " bytes");
  }
  ImageInput image;
  image.data = std::move(bytes.value());
  image.mime_type = mime;
  image.detail = "auto";
  return image;
}

core::Result<ChatRequest> parse_chat_completion_request(const std::string& body, const Limits& limits,
                                                        ApiError* error) {
  return run_parser<ChatRequest>(
      [&]() -> ChatRequest {
        json doc = parse_body(body, limits);
        ChatRequest req;
        req.model = get_string(doc, "model", "model", /*required=*/true);
        if (req.model.empty()) fail("model", "'model' must not be empty");
        const json* messages = field(doc, "messages");
        if (!messages) fail("messages", "'messages' is required", "missing_required_parameter");
        if (!messages->is_array()) wrong_type("messages", *messages, "an array of messages");
        if (messages->empty()) fail("messages", "'messages' must hold at least one message");
        if (messages->size() > limits.max_messages) {
          fail("messages", "'messages' holds " + std::to_string(messages->size()) + " messages; at most " +
                               std::to_string(limits.max_messages) + " are allowed");
        }
        size_t images = 0;
        for (size_t i = 0; i < messages->size(); ++i) {
          req.messages.push_back(parse_message((*messages)[i], i, limits, &images));
        }
        refuse_chat_only_features(doc, body, &req.response_format);
        parse_grammar(doc, &req.response_format);
        parse_tools(doc, body, &req);
        if (req.tool_choice.mode != ToolChoice::Mode::kNone && req.response_format.type == OutputFormat::Type::kGrammar)
          unsupported("grammar", "'grammar' cannot be combined with 'tools' (unless 'tool_choice' is \"none\")");
        if (req.tool_choice.mode != ToolChoice::Mode::kNone &&
            req.response_format.type != OutputFormat::Type::kText)
          unsupported("response_format", "'response_format' other than \"text\" cannot be combined with 'tools' "
                                         "(unless 'tool_choice' is \"none\")");
        parse_common(doc, limits, &req.sampling, &req.stream, &req.include_usage, &req.user, true,
                     &req.logprobs);
        return req;
      },
      error);
}

core::Result<CompletionRequest> parse_completion_request(const std::string& body, const Limits& limits,
                                                         ApiError* error) {
  return run_parser<CompletionRequest>(
      [&]() -> CompletionRequest {
        json doc = parse_body(body, limits);
        CompletionRequest req;
        req.model = get_string(doc, "model", "model", /*required=*/true);
        if (req.model.empty()) fail("model", "'model' must not be empty");
        const json* prompt = field(doc, "prompt");
        if (!prompt) fail("prompt", "'prompt' is required", "missing_required_parameter");
        if (prompt->is_string()) {
          req.prompt = prompt->get<std::string>();
        } else if (prompt->is_array()) {
          if (prompt->size() != 1) {
            unsupported("prompt", "'prompt' as an array must hold exactly one string (batched prompts are not supported), got " +
                                      std::to_string(prompt->size()));
          }
          if (!(*prompt)[0].is_string()) {
            wrong_type("prompt[0]", (*prompt)[0], "a string (token-id prompts are not supported)");
          }
          req.prompt = (*prompt)[0].get<std::string>();
        } else {
          wrong_type("prompt", *prompt, "a string or an array of one string");
        }
        req.echo = get_bool(doc, "echo").value_or(false);
        if (req.echo) unsupported("echo", "echo is not supported; omit 'echo' or set it to false");
        if (const json* suffix = field(doc, "suffix")) {
          if (!suffix->is_string() || !suffix->get<std::string>().empty()) {
            unsupported("suffix", "suffix (fill-in-the-middle) is not supported");
          }
        }
        if (const json* best_of = field(doc, "best_of")) {
          if (!best_of->is_number() || best_of->get<double>() != 1) {
            unsupported("best_of", "only best_of=1 is supported");
          }
        }
        parse_grammar(doc, &req.output);
        parse_common(doc, limits, &req.sampling, &req.stream, &req.include_usage, &req.user, false,
                     &req.logprobs);
        return req;
      },
      error);
}

core::Result<EmbeddingRequest> parse_embedding_request(const std::string& body, const Limits& limits, ApiError* error) {
  return run_parser<EmbeddingRequest>(
      [&]() -> EmbeddingRequest {
        json doc = parse_body(body, limits);
        EmbeddingRequest req;
        req.model = get_string(doc, "model", "model", /*required=*/true);
        if (req.model.empty()) fail("model", "'model' must not be empty");
        req.inputs = parse_embedding_inputs(doc, limits, &req.single);
        const std::string format = get_string(doc, "encoding_format", "encoding_format", /*required=*/false);
        if (format == "base64") {
          req.encoding_format = EncodingFormat::kBase64;
        } else if (!format.empty() && format != "float") {
          fail("encoding_format", "'encoding_format' must be \"float\" or \"base64\", got \"" + format + "\"");
        }
        if (auto d = get_int(doc, "dimensions", 1, limits.max_dimensions)) req.dimensions = static_cast<int>(*d);
        req.user = get_string(doc, "user", "user", /*required=*/false);
        return req;
      },
      error);
}

const char* model_kind_name(ModelKind kind) { return kind == ModelKind::kEmbedding ? "embedding" : "chat"; }

bool is_embeddings_endpoint(std::string_view endpoint) { return endpoint == "/v1/embeddings"; }

std::optional<ApiError> wrong_model_kind_error(ModelKind kind, std::string_view endpoint, const std::string& model) {
  const bool embeddings = is_embeddings_endpoint(endpoint);
  if (embeddings == (kind == ModelKind::kEmbedding)) return std::nullopt;
  ApiError e;
  e.param = "model";
  e.code = "wrong_model_type";
  e.message = embeddings ? "model '" + model + "' is a chat model: it serves /v1/chat/completions and " +
                               "/v1/completions, not /v1/embeddings"
                         : "model '" + model + "' is an embedding model: it serves /v1/embeddings, not " +
                               std::string(endpoint);
  return e;
}

}  // namespace zs::gateway::openai
