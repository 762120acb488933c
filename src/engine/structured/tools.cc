#include "engine/structured/tools.h"

#include <nlohmann/json.hpp>

#include "core/random_id.h"

namespace zs::engine::structured {

using core::Result;
using core::Status;
using ojson = nlohmann::ordered_json;

namespace {

constexpr std::string_view kHermesCall = "<tool_call>";
constexpr std::string_view kHermesCallEnd = "</tool_call>";

// How a format writes calls: each one in open...close (Hermes, Llama 3 with nothing around),
// or all of them as one JSON array in open[...]close (Mistral, Phi).
struct CallSyntax {
  std::string open, close, sep;
  bool list = false;
  const char* args_key = "arguments";
  std::string_view trigger;      // the text that starts calls in the output ("" for Llama 3: '{')
  std::string_view trigger_end;  // what ends a block of calls ("": the end of the output)
};

CallSyntax syntax_of(ToolFormat format) {
  switch (format) {
    case ToolFormat::kLlama3:
      return {"", "", "; ", false, "parameters", "", ""};
    case ToolFormat::kMistral:
      return {std::string(kMistralToolCalls) + " [", "]", ", ", true, "arguments", kMistralToolCalls, ""};
    case ToolFormat::kPhi:
      return {std::string(kPhiToolCall) + "[", "]" + std::string(kPhiToolCallEnd), ", ", true, "arguments",
              kPhiToolCall, kPhiToolCallEnd};
    case ToolFormat::kHermes:
      break;
  }
  return {std::string(kHermesCall) + "\n", "\n" + std::string(kHermesCallEnd), "\n", false, "arguments", kHermesCall,
          kHermesCallEnd};
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

ojson parameters_json(const ToolSpec& t) {
  if (t.parameters.empty()) return ojson{{"type", "object"}, {"properties", ojson::object()}};
  try {
    return ojson::parse(t.parameters);
  } catch (const std::exception&) {
    return ojson::object();
  }
}

// The function as the published templates print it: {"name", "description", "parameters"}.
ojson function_json(const ToolSpec& t) {
  ojson f = {{"name", t.name}};
  if (!t.description.empty()) f["description"] = t.description;
  f["parameters"] = parameters_json(t);
  return f;
}

// ... and wrapped as OpenAI sends it: {"type": "function", "function": {...}}.
ojson tool_json(const ToolSpec& t) { return {{"type", "function"}, {"function", function_json(t)}}; }

ojson arguments_json(const ToolCall& c) {
  try {
    return ojson::parse(c.arguments);
  } catch (const std::exception&) {
    return c.arguments;  // not JSON: kept as the string the client sent
  }
}

std::string dump(const ojson& j, int indent = -1) { return j.dump(indent, ' ', false, ojson::error_handler_t::replace); }

// JSON as the templates' `tojson` writes it (Python's json.dumps): ", " and ": " separators.
std::string tojson(const ojson& j) {
  if (j.is_object()) {
    std::string out = "{";
    bool first = true;
    for (auto it = j.begin(); it != j.end(); ++it) {
      out += (first ? "" : ", ") + dump(ojson(it.key())) + ": " + tojson(it.value());
      first = false;
    }
    return out + "}";
  }
  if (j.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < j.size(); ++i) out += (i ? ", " : "") + tojson(j[i]);
    return out + "]";
  }
  return dump(j);
}

ChatMessage text_message(const std::string& role, const std::string& text) {
  return ChatMessage{role, {ChatPart{ChatPart::Kind::kText, text}}};
}

// An assistant's earlier calls, written as the model writes them.
std::string calls_text(ToolFormat format, const std::vector<ToolCall>& calls) {
  const CallSyntax sx = syntax_of(format);
  std::string out;
  for (size_t i = 0; i < calls.size(); ++i) {
    ojson call = {{"name", calls[i].name}, {sx.args_key, arguments_json(calls[i])}};
    if (format == ToolFormat::kMistral) call["id"] = calls[i].id;
    if (i) out += sx.sep;
    out += sx.list ? tojson(call) : sx.open + tojson(call) + sx.close;
  }
  return sx.list ? sx.open + out + sx.close : out;
}

std::vector<ChatMessage> render_hermes(const std::vector<ToolChatMessage>& in, const std::vector<ToolSpec>& tools) {
  std::vector<ChatMessage> out;
  size_t i = 0;
  std::string system;
  if (!in.empty() && in[0].message.role == "system") {
    system = message_text(in[0].message);
    i = 1;
  }
  if (!tools.empty()) {
    std::string t = system.empty() ? "" : system + "\n\n";
    t += "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
         "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
    for (const ToolSpec& spec : tools) t += "\n" + tojson(tool_json(spec));
    t += "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
         "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
         "<args-json-object>}\n</tool_call>";
    system = t;
  }
  if (!system.empty() || (!in.empty() && in[0].message.role == "system")) out.push_back(text_message("system", system));
  for (; i < in.size(); ++i) {
    const ToolChatMessage& m = in[i];
    if (m.message.role == "tool") {
      // Consecutive results share one user turn, as Qwen2.5's template writes them.
      std::string t;
      for (; i < in.size() && in[i].message.role == "tool"; ++i)
        t += (t.empty() ? "" : "\n") + std::string("<tool_response>\n") + message_text(in[i].message) + "\n</tool_response>";
      --i;
      out.push_back(text_message("user", t));
      continue;
    }
    if (m.message.role == "assistant" && !m.calls.empty()) {
      const std::string t = trim(message_text(m.message));
      out.push_back(text_message("assistant", (t.empty() ? "" : t + "\n") + calls_text(ToolFormat::kHermes, m.calls)));
      continue;
    }
    out.push_back(m.message);
  }
  return out;
}

std::vector<ChatMessage> render_llama3(const std::vector<ToolChatMessage>& in, const std::vector<ToolSpec>& tools) {
  std::vector<ChatMessage> out;
  bool tools_written = tools.empty();
  for (const ToolChatMessage& m : in) {
    if (m.message.role == "tool") {
      out.push_back(text_message("tool", message_text(m.message)));
      continue;
    }
    if (m.message.role == "assistant" && !m.calls.empty()) {
      out.push_back(text_message("assistant", calls_text(ToolFormat::kLlama3, m.calls)));
      continue;
    }
    if (m.message.role == "user" && !tools_written) {
      // Llama 3.1's template (tools_in_user_message): the tools lead the first user message.
      std::string t =
          "Given the following functions, please respond with a JSON for a function call with its proper arguments "
          "that best answers the given prompt.\n\nRespond in the format {\"name\": function name, \"parameters\": "
          "dictionary of argument name and its value}.Do not use variables.\n\n";
      for (const ToolSpec& spec : tools) t += dump(tool_json(spec), 4) + "\n\n";
      ChatMessage with = m.message;
      with.parts.insert(with.parts.begin(), ChatPart{ChatPart::Kind::kText, t});
      out.push_back(std::move(with));
      tools_written = true;
      continue;
    }
    out.push_back(m.message);
  }
  return out;
}

// A tool result's content as Mistral's template inserts it: JSON as it is, anything else quoted.
std::string mistral_content(const std::string& text) {
  try {
    return tojson(ojson::parse(text));
  } catch (const std::exception&) {
    return dump(ojson(text));
  }
}

std::vector<ChatMessage> render_mistral(const std::vector<ToolChatMessage>& in, const std::vector<ToolSpec>& tools) {
  std::vector<ChatMessage> out;
  if (!tools.empty()) {
    ojson list = ojson::array();
    for (const ToolSpec& spec : tools) list.push_back(tool_json(spec));
    out.push_back(text_message("tools", tojson(list)));
  }
  for (const ToolChatMessage& m : in) {
    if (m.message.role == "tool") {
      out.push_back(text_message(
          "tool", "{\"content\": " + mistral_content(message_text(m.message)) + ", \"call_id\": " + dump(ojson(m.tool_call_id)) + "}"));
    } else if (m.message.role == "assistant" && !m.calls.empty()) {
      out.push_back(text_message("assistant", calls_text(ToolFormat::kMistral, m.calls)));  // as the template: calls only
    } else {
      out.push_back(m.message);
    }
  }
  return out;
}

std::vector<ChatMessage> render_phi(const std::vector<ToolChatMessage>& in, const std::vector<ToolSpec>& tools) {
  std::vector<ChatMessage> out;
  size_t i = 0;
  if (!tools.empty()) {
    // The published template writes the tools only inside a system turn; without one, the
    // model card's own system text leads them.
    std::string system = "You are a helpful assistant with some tools.";
    if (!in.empty() && in[0].message.role == "system") system = message_text(in[i++].message);
    ojson list = ojson::array();
    for (const ToolSpec& spec : tools) list.push_back(function_json(spec));
    out.push_back(text_message("system", system + std::string(kPhiToolList) + tojson(list) + std::string(kPhiToolListEnd)));
  }
  for (; i < in.size(); ++i) {
    const ToolChatMessage& m = in[i];
    if (m.message.role == "tool") {
      out.push_back(text_message("tool", message_text(m.message)));
    } else if (m.message.role == "assistant" && !m.calls.empty()) {
      out.push_back(text_message("assistant", trim(message_text(m.message)) + calls_text(ToolFormat::kPhi, m.calls)));
    } else {
      out.push_back(m.message);
    }
  }
  return out;
}

bool known(const std::vector<ToolSpec>& tools, const std::string& name) {
  for (const ToolSpec& t : tools)
    if (t.name == name) return true;
  return false;
}

// One call's JSON object -> ToolCall, when it names a known tool.
std::optional<ToolCall> call_from(const ojson& j, const char* args_key, const std::vector<ToolSpec>& tools) {
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return std::nullopt;
  const std::string name = j["name"];
  if (!known(tools, name)) return std::nullopt;
  ToolCall c;
  c.name = name;
  const ojson* args = nullptr;
  if (j.contains(args_key)) args = &j[args_key];
  else if (j.contains("arguments")) args = &j["arguments"];
  else if (j.contains("parameters")) args = &j["parameters"];
  if (!args) c.arguments = "{}";
  else if (args->is_string()) c.arguments = args->get<std::string>();
  else c.arguments = dump(*args);
  return c;
}

// Calls in a block's JSON (one object, or an array of them); false when any does not parse or
// names an unknown tool.
bool calls_from(const std::string& body, const char* args_key, const std::vector<ToolSpec>& tools,
                std::vector<ToolCall>& out) {
  ojson j;
  try {
    j = ojson::parse(trim(body));
  } catch (const std::exception&) {
    return false;
  }
  if (!j.is_array()) j = ojson::array({j});
  if (j.empty()) return false;
  for (const ojson& one : j) {
    auto call = call_from(one, args_key, tools);
    if (!call) return false;
    out.push_back(std::move(*call));
  }
  return true;
}

}  // namespace

ToolFormat tool_format_for(ChatTemplateKind kind) {
  switch (kind) {
    case ChatTemplateKind::kLlama3: return ToolFormat::kLlama3;
    case ChatTemplateKind::kMistralV3: return ToolFormat::kMistral;
    case ChatTemplateKind::kPhi4Mini: return ToolFormat::kPhi;
    default: return ToolFormat::kHermes;
  }
}

std::vector<std::string> tool_call_markers(ToolFormat format) {
  const CallSyntax sx = syntax_of(format);
  std::vector<std::string> out;
  if (!sx.trigger.empty()) out.emplace_back(sx.trigger);
  if (!sx.trigger_end.empty()) out.emplace_back(sx.trigger_end);
  return out;
}

std::string new_tool_call_id(ToolFormat format) {
  return format == ToolFormat::kMistral ? core::random_hex(9) : "call_" + core::random_hex(24);
}

std::vector<ChatMessage> render_tool_conversation(ToolFormat format, const std::vector<ToolChatMessage>& messages,
                                                  const std::vector<ToolSpec>& tools) {
  switch (format) {
    case ToolFormat::kLlama3: return render_llama3(messages, tools);
    case ToolFormat::kMistral: return render_mistral(messages, tools);
    case ToolFormat::kPhi: return render_phi(messages, tools);
    case ToolFormat::kHermes: break;
  }
  return render_hermes(messages, tools);
}

Result<Grammar> tool_call_grammar(ToolFormat format, const std::vector<ToolSpec>& tools, int max_calls,
                                  SchemaError* error, std::string* failed_tool) {
  if (tools.empty()) return Status::error("no tools to call");
  const CallSyntax sx = syntax_of(format);
  JsonGrammarBuilder jb;
  std::vector<Expr> alts;
  for (const ToolSpec& t : tools) {
    auto args = jb.schema(parameters_json(t), error);
    if (!args) {
      if (failed_tool) *failed_tool = t.name;
      return args.status();
    }
    alts.push_back(Expr::seq({Expr::literal("{\"name\": " + json_quote(t.name) + ", \"" + sx.args_key + "\": "),
                              std::move(args.value()), Expr::literal("}")}));
  }
  const int call = jb.builder().add("call", Expr::alt(std::move(alts)));
  const int more = std::max(0, max_calls - 1);
  Expr root;
  if (sx.list) {
    root = Expr::seq({Expr::literal(sx.open), Expr::ref(call),
                      Expr::repeat(Expr::seq({Expr::literal(sx.sep), Expr::ref(call)}), 0, more), Expr::literal(sx.close)});
  } else {
    const int one = jb.builder().add("one", Expr::seq({Expr::literal(sx.open), Expr::ref(call), Expr::literal(sx.close)}));
    root = Expr::seq({Expr::ref(one), Expr::repeat(Expr::seq({Expr::literal(sx.sep), Expr::ref(one)}), 0, more)});
  }
  const int r = jb.builder().add("root", std::move(root));
  return jb.builder().build(r);
}

ToolOutput parse_tool_output(ToolFormat format, const std::string& text, const std::vector<ToolSpec>& tools) {
  const CallSyntax sx = syntax_of(format);
  ToolOutput plain{text, {}};
  ToolOutput out;
  if (sx.trigger.empty()) {  // Llama 3: the whole output is objects separated by "; "
    const std::string t = trim(text);
    if (t.empty() || t[0] != '{') return plain;
    size_t pos = 0;
    while (pos < t.size()) {
      size_t end = t.find("; {", pos);
      if (!calls_from(t.substr(pos, end == std::string::npos ? std::string::npos : end - pos), sx.args_key, tools,
                      out.calls))
        return plain;
      if (end == std::string::npos) break;
      pos = end + 2;
    }
    return out;
  }
  const std::string trigger(sx.trigger), trigger_end(sx.trigger_end);
  size_t pos = 0;
  std::string content;
  while (true) {
    const size_t open = text.find(trigger, pos);
    if (open == std::string::npos) {
      content += text.substr(pos);
      break;
    }
    content += text.substr(pos, open - pos);
    const size_t body = open + trigger.size();
    const size_t close = trigger_end.empty() ? std::string::npos : text.find(trigger_end, body);
    if (!calls_from(text.substr(body, close == std::string::npos ? std::string::npos : close - body), sx.args_key, tools,
                    out.calls))
      return plain;
    if (close == std::string::npos) break;
    pos = close + trigger_end.size();
  }
  if (out.calls.empty()) return plain;
  out.content = trim(content);
  return out;
}

bool may_be_tool_call(ToolFormat format, const std::string& text) {
  const std::string t = text.substr(std::min(text.size(), text.find_first_not_of(" \t\r\n")));
  if (t.empty()) return true;
  const std::string_view trigger = syntax_of(format).trigger;
  if (trigger.empty()) return t[0] == '{';
  return t.size() <= trigger.size() ? trigger.starts_with(t) : std::string_view(t).starts_with(trigger);
}

std::string ToolCallStream::push(const std::string& piece) {
  held_ += piece;
  if (mode_ == Mode::kCall) return "";
  const std::string trigger(syntax_of(format_).trigger);
  if (mode_ == Mode::kUndecided) {
    if (may_be_tool_call(format_, held_)) {
      const bool begun = trigger.empty() ? held_.find_first_not_of(" \t\r\n") != std::string::npos
                                         : held_.find(trigger) != std::string::npos;
      if (begun) mode_ = Mode::kCall;
      return "";
    }
    mode_ = Mode::kText;
  }
  std::string out;
  if (trigger.empty()) {  // Llama 3: a call is the whole output, so text stays text
    out.swap(held_);
    return out;
  }
  if (const size_t at = held_.find(trigger); at != std::string::npos) {
    out = held_.substr(0, at);
    held_.erase(0, at);
    mode_ = Mode::kCall;
    return out;
  }
  // Keep back a tail that may be the start of the trigger.
  size_t keep = 0;
  for (size_t k = std::min(held_.size(), trigger.size() - 1); k > 0; --k) {
    if (held_.compare(held_.size() - k, k, trigger, 0, k) == 0) {
      keep = k;
      break;
    }
  }
  out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

}  // namespace zs::engine::structured
