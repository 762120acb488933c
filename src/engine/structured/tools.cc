#include "engine/structured/tools.h"

#include <nlohmann/json.hpp>

namespace zs::engine::structured {

using core::Result;
using core::Status;
using ojson = nlohmann::ordered_json;

namespace {

constexpr const char* kCallOpen = "<tool_call>";
constexpr const char* kCallClose = "</tool_call>";

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

std::string text_of(const ChatMessage& m) {
  std::string out;
  for (const ChatPart& p : m.parts)
    if (p.kind == ChatPart::Kind::kText) out += p.text;
  return out;
}

ojson parameters_json(const ToolSpec& t) {
  if (t.parameters.empty()) return ojson{{"type", "object"}, {"properties", ojson::object()}};
  try {
    return ojson::parse(t.parameters);
  } catch (const std::exception&) {
    return ojson::object();
  }
}

// The tool as the published templates print it: {"type": "function", "function": {...}}.
ojson tool_json(const ToolSpec& t) {
  ojson f = {{"name", t.name}};
  if (!t.description.empty()) f["description"] = t.description;
  f["parameters"] = parameters_json(t);
  return {{"type", "function"}, {"function", f}};
}

ojson arguments_json(const ToolCall& c) {
  try {
    return ojson::parse(c.arguments);
  } catch (const std::exception&) {
    return c.arguments;  // not JSON: kept as the string the client sent
  }
}

std::string dump(const ojson& j, int indent = -1) { return j.dump(indent, ' ', false, ojson::error_handler_t::replace); }

ChatMessage text_message(const std::string& role, const std::string& text) {
  return ChatMessage{role, {ChatPart{ChatPart::Kind::kText, text}}};
}

std::vector<ChatMessage> render_hermes(const std::vector<ToolChatMessage>& in, const std::vector<ToolSpec>& tools) {
  std::vector<ChatMessage> out;
  size_t i = 0;
  std::string system;
  if (!in.empty() && in[0].message.role == "system") {
    system = text_of(in[0].message);
    i = 1;
  }
  if (!tools.empty()) {
    std::string t = system.empty() ? "" : system + "\n\n";
    t += "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
         "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
    for (const ToolSpec& spec : tools) t += "\n" + dump(tool_json(spec));
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
        t += (t.empty() ? "" : "\n") + std::string("<tool_response>\n") + text_of(in[i].message) + "\n</tool_response>";
      --i;
      out.push_back(text_message("user", t));
      continue;
    }
    if (m.message.role == "assistant" && !m.calls.empty()) {
      std::string t = trim(text_of(m.message));
      for (const ToolCall& c : m.calls) {
        ojson call = {{"name", c.name}, {"arguments", arguments_json(c)}};
        t += (t.empty() ? "" : "\n") + std::string(kCallOpen) + "\n" + dump(call) + "\n" + kCallClose;
      }
      out.push_back(text_message("assistant", t));
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
      out.push_back(text_message("ipython", text_of(m.message)));
      continue;
    }
    if (m.message.role == "assistant" && !m.calls.empty()) {
      std::string t;
      for (const ToolCall& c : m.calls)
        t += (t.empty() ? "" : "; ") + dump(ojson{{"name", c.name}, {"parameters", arguments_json(c)}});
      out.push_back(text_message("assistant", t));
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

}  // namespace

ToolFormat tool_format_for(ChatTemplateKind kind) {
  return kind == ChatTemplateKind::kLlama3 ? ToolFormat::kLlama3 : ToolFormat::kHermes;
}

std::vector<ChatMessage> render_tool_conversation(ToolFormat format, const std::vector<ToolChatMessage>& messages,
                                                  const std::vector<ToolSpec>& tools) {
  return format == ToolFormat::kLlama3 ? render_llama3(messages, tools) : render_hermes(messages, tools);
}

Result<Grammar> tool_call_grammar(ToolFormat format, const std::vector<ToolSpec>& tools, int max_calls,
                                  SchemaError* error, std::string* failed_tool) {
  if (tools.empty()) return Status::error("no tools to call");
  JsonGrammarBuilder jb;
  std::vector<Expr> alts;
  const char* args_key = format == ToolFormat::kLlama3 ? "parameters" : "arguments";
  for (const ToolSpec& t : tools) {
    auto args = jb.schema(parameters_json(t), error);
    if (!args) {
      if (failed_tool) *failed_tool = t.name;
      return args.status();
    }
    alts.push_back(Expr::seq({Expr::literal("{\"name\": " + json_quote(t.name) + ", \"" + args_key + "\": "),
                              std::move(args.value()), Expr::literal("}")}));
  }
  const int call = jb.builder().add("call", Expr::alt(std::move(alts)));
  Expr one, sep;
  if (format == ToolFormat::kLlama3) {
    one = Expr::ref(call);
    sep = Expr::literal("; ");
  } else {
    one = Expr::seq({Expr::literal(std::string(kCallOpen) + "\n"), Expr::ref(call), Expr::literal(std::string("\n") + kCallClose)});
    sep = Expr::literal("\n");
  }
  const int r = jb.builder().add("root", Expr::seq({one, Expr::repeat(Expr::seq({sep, one}), 0, std::max(0, max_calls - 1))}));
  return jb.builder().build(r);
}

ToolOutput parse_tool_output(ToolFormat format, const std::string& text, const std::vector<ToolSpec>& tools) {
  ToolOutput plain{text, {}};
  if (format == ToolFormat::kLlama3) {
    const std::string t = trim(text);
    if (t.empty() || t[0] != '{') return plain;
    ToolOutput out;
    size_t pos = 0;
    while (pos < t.size()) {  // one or more objects, separated by ';'
      size_t end = t.find("; {", pos);
      const std::string piece = t.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
      try {
        auto call = call_from(ojson::parse(piece), "parameters", tools);
        if (!call) return plain;
        out.calls.push_back(std::move(*call));
      } catch (const std::exception&) {
        return plain;
      }
      if (end == std::string::npos) break;
      pos = end + 2;
    }
    return out;
  }
  ToolOutput out;
  size_t pos = 0;
  std::string content;
  while (true) {
    const size_t open = text.find(kCallOpen, pos);
    if (open == std::string::npos) {
      content += text.substr(pos);
      break;
    }
    content += text.substr(pos, open - pos);
    const size_t body = open + std::string(kCallOpen).size();
    size_t close = text.find(kCallClose, body);
    const std::string inner = text.substr(body, close == std::string::npos ? std::string::npos : close - body);
    try {
      auto call = call_from(ojson::parse(trim(inner)), "arguments", tools);
      if (!call) return plain;
      out.calls.push_back(std::move(*call));
    } catch (const std::exception&) {
      return plain;
    }
    if (close == std::string::npos) break;
    pos = close + std::string(kCallClose).size();
  }
  if (out.calls.empty()) return plain;
  out.content = trim(content);
  return out;
}

bool may_be_tool_call(ToolFormat format, const std::string& text) {
  const std::string t = text.substr(std::min(text.size(), text.find_first_not_of(" \t\r\n")));
  if (t.empty()) return true;
  if (format == ToolFormat::kLlama3) return t[0] == '{';
  const std::string open = kCallOpen;
  return t.size() <= open.size() ? open.compare(0, t.size(), t) == 0 : t.compare(0, open.size(), open) == 0;
}

}  // namespace zs::engine::structured
