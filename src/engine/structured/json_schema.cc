#include "engine/structured/json_schema.h"

#include <algorithm>
#include <functional>
#include <set>

namespace zs::engine::structured {

using core::Result;
using core::Status;
using json = nlohmann::ordered_json;

namespace {

constexpr int kMaxWhitespace = 20;
constexpr int kMaxDigits = 16;
constexpr int kMaxRepeat = 1000;  // largest minItems/maxItems/minLength/maxLength compiled out

Expr lit(std::string_view s) { return Expr::literal(s); }
Expr range(uint8_t lo, uint8_t hi) { return Expr::byte_range(lo, hi); }
Expr digit() { return range('0', '9'); }
Expr seq(std::vector<Expr> k) { return Expr::seq(std::move(k)); }
Expr alt(std::vector<Expr> k) { return Expr::alt(std::move(k)); }
Expr rep(Expr e, int lo, int hi) { return Expr::repeat(std::move(e), lo, hi); }

// One character of a JSON string's body: unescaped UTF-8 (valid sequences only, no control
// characters, no '"' or '\') or an escape.
Expr string_char() {
  ByteSet plain;
  for (int b = 0x20; b < 0x80; ++b) plain.set(static_cast<size_t>(b));
  plain.reset('"');
  plain.reset('\\');
  ByteSet hex;
  for (int b = '0'; b <= '9'; ++b) hex.set(static_cast<size_t>(b));
  for (int b = 'a'; b <= 'f'; ++b) hex.set(static_cast<size_t>(b));
  for (int b = 'A'; b <= 'F'; ++b) hex.set(static_cast<size_t>(b));
  ByteSet esc;
  for (char c : std::string("\"\\/bfnrt")) esc.set(static_cast<uint8_t>(c));
  const Expr cont = range(0x80, 0xBF);
  ByteSet e1;  // E1..EC, EE, EF
  for (int b = 0xE1; b <= 0xEC; ++b) e1.set(static_cast<size_t>(b));
  e1.set(0xEE);
  e1.set(0xEF);
  return alt({
      Expr::byte_set(plain),
      seq({lit("\\"), alt({Expr::byte_set(esc), seq({lit("u"), rep(Expr::byte_set(hex), 4, 4)})})}),
      seq({range(0xC2, 0xDF), cont}),
      seq({lit("\xE0"), range(0xA0, 0xBF), cont}),
      seq({Expr::byte_set(e1), cont, cont}),
      seq({lit("\xED"), range(0x80, 0x9F), cont}),
      seq({lit("\xF0"), range(0x90, 0xBF), cont, cont}),
      seq({range(0xF1, 0xF3), cont, cont, cont}),
      seq({lit("\xF4"), range(0x80, 0x8F), cont, cont}),
  });
}

Expr two_digits(char first_lo, char first_hi, char second_hi) {
  return seq({range(static_cast<uint8_t>(first_lo), static_cast<uint8_t>(first_hi)),
              range('0', static_cast<uint8_t>(second_hi))});
}

Expr date_expr() {
  return seq({rep(digit(), 4, 4), lit("-"), alt({seq({lit("0"), range('1', '9')}), seq({lit("1"), range('0', '2')})}),
              lit("-"),
              alt({seq({lit("0"), range('1', '9')}), seq({range('1', '2'), digit()}), seq({lit("3"), range('0', '1')})})});
}

Expr time_expr() {
  const Expr hour = alt({seq({range('0', '1'), digit()}), seq({lit("2"), range('0', '3')})});
  const Expr minute = two_digits('0', '5', '9');
  return seq({hour, lit(":"), minute, lit(":"), minute, Expr::opt(seq({lit("."), rep(digit(), 1, 6)})),
              alt({lit("Z"), seq({alt({lit("+"), lit("-")}), hour, lit(":"), minute})})});
}

Expr uuid_expr() {
  ByteSet hex;
  for (int b = '0'; b <= '9'; ++b) hex.set(static_cast<size_t>(b));
  for (int b = 'a'; b <= 'f'; ++b) hex.set(static_cast<size_t>(b));
  for (int b = 'A'; b <= 'F'; ++b) hex.set(static_cast<size_t>(b));
  auto h = [&](int n) { return rep(Expr::byte_set(hex), n, n); };
  return seq({h(8), lit("-"), h(4), lit("-"), h(4), lit("-"), h(4), lit("-"), h(12)});
}

const std::set<std::string>& annotations() {
  static const std::set<std::string> k = {"title",   "description", "default",    "examples", "$schema",
                                          "$id",     "$comment",    "deprecated", "readOnly", "writeOnly",
                                          "$defs",   "definitions", "strict"};
  return k;
}

const std::set<std::string>& supported() {
  static const std::set<std::string> k = {"type",  "properties", "required", "additionalProperties",
                                          "items", "minItems",   "maxItems", "enum",
                                          "const", "anyOf",      "$ref",     "format",
                                          "minLength", "maxLength"};
  return k;
}

std::string escape_pointer(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

}  // namespace

std::string json_quote(const std::string& s) { return json(s).dump(-1, ' ', false, json::error_handler_t::replace); }

JsonGrammarBuilder::JsonGrammarBuilder() {
  // Between tokens: nothing, one space, or one line break and up to 20 spaces or tabs of indent.
  ws_ = b_.add("ws", alt({Expr::empty(), lit(" "), seq({lit("\n"), rep(alt({lit(" "), lit("\t")}), 0, kMaxWhitespace)})}));
  string_ = b_.add("string", seq({lit("\""), Expr::star(string_char()), lit("\"")}));
  const Expr int_part =
      seq({Expr::opt(lit("-")), alt({lit("0"), seq({range('1', '9'), rep(digit(), 0, kMaxDigits - 1)})})});
  integer_ = b_.add("integer", int_part);
  number_ = b_.add("number", seq({Expr::ref(integer_), Expr::opt(seq({lit("."), rep(digit(), 1, kMaxDigits)})),
                                  Expr::opt(seq({alt({lit("e"), lit("E")}), Expr::opt(alt({lit("+"), lit("-")})),
                                                 rep(digit(), 1, 3)}))}));
  value_ = b_.declare("value");
  object_ = b_.declare("object");
  array_ = b_.declare("array");
  const Expr member = seq({Expr::ref(string_), ws(), lit(":"), ws(), Expr::ref(value_), ws()});
  b_.define(object_, seq({lit("{"), ws(), Expr::opt(seq({member, Expr::star(seq({lit(","), ws(), member}))})), lit("}")}));
  const Expr item = seq({Expr::ref(value_), ws()});
  b_.define(array_, seq({lit("["), ws(), Expr::opt(seq({item, Expr::star(seq({lit(","), ws(), item}))})), lit("]")}));
  b_.define(value_, alt({Expr::ref(object_), Expr::ref(array_), Expr::ref(string_), Expr::ref(number_), lit("true"),
                         lit("false"), lit("null")}));
}

void JsonGrammarBuilder::refuse(const std::string& keyword, const std::string& path, const std::string& message) {
  throw Refused{{keyword, path, message, false}};
}

void JsonGrammarBuilder::refuse_unsupported(const std::string& keyword, const std::string& path,
                                            const std::string& message) {
  throw Refused{{keyword, path, message, true}};
}

Result<Expr> JsonGrammarBuilder::schema(const json& schema, SchemaError* error) {
  root_ = &schema;
  try {
    return compile(schema, "#");
  } catch (const Refused& r) {
    if (error) *error = r.e;
    return Status::error(r.e.message);
  }
}

Expr JsonGrammarBuilder::resolve_ref(const std::string& ref, const std::string& path) {
  if (auto it = refs_.find(ref); it != refs_.end()) return Expr::ref(it->second);
  if (ref.empty() || ref[0] != '#')
    refuse_unsupported("$ref", path, "'$ref' \"" + ref + "\" at " + path + " is not supported: only references inside the schema (\"#...\")");
  const json* target = root_;
  size_t pos = 1;
  while (pos < ref.size()) {
    if (ref[pos] != '/') refuse("$ref", path, "'$ref' \"" + ref + "\" at " + path + " is not a JSON pointer");
    size_t end = ref.find('/', pos + 1);
    if (end == std::string::npos) end = ref.size();
    std::string key = ref.substr(pos + 1, end - pos - 1);
    for (size_t i; (i = key.find("~1")) != std::string::npos;) key.replace(i, 2, "/");
    for (size_t i; (i = key.find("~0")) != std::string::npos;) key.replace(i, 2, "~");
    if (target->is_object() && target->contains(key)) {
      target = &(*target)[key];
    } else if (target->is_array() && !key.empty() && std::all_of(key.begin(), key.end(), ::isdigit) &&
               std::stoul(key) < target->size()) {
      target = &(*target)[std::stoul(key)];
    } else {
      refuse("$ref", path, "'$ref' \"" + ref + "\" at " + path + " points to nothing in the schema");
    }
    pos = end;
  }
  const int rule = b_.declare("ref" + std::to_string(counter_++));
  refs_[ref] = rule;  // before compiling the target, so that recursion refers to the rule
  b_.define(rule, compile(*target, ref));
  return Expr::ref(rule);
}

Expr JsonGrammarBuilder::compile(const json& node, const std::string& path) {
  if (node.is_boolean()) {
    if (node.get<bool>()) return any_value();
    refuse("false", path, "the schema at " + path + " is false: no value satisfies it");
  }
  if (!node.is_object()) refuse("type", path, "the schema at " + path + " must be an object, got " + node.dump());
  for (const auto& [key, value] : node.items()) {
    if (supported().count(key) || annotations().count(key)) continue;
    refuse_unsupported(key, path, "JSON Schema keyword '" + key + "' (at " + path + ") is not supported in structured outputs");
  }
  if (const auto it = node.find("$ref"); it != node.end()) {
    if (!it->is_string()) refuse("$ref", path, "'$ref' at " + path + " must be a string");
    for (const auto& [key, value] : node.items())
      if (key != "$ref" && !annotations().count(key))
        refuse_unsupported(key, path, "'" + key + "' beside '$ref' (at " + path + ") is not supported");
    return resolve_ref(it->get<std::string>(), path);
  }
  if (const auto it = node.find("const"); it != node.end()) return lit(it->dump());
  if (const auto it = node.find("enum"); it != node.end()) {
    if (!it->is_array()) refuse("enum", path, "'enum' at " + path + " must be an array");
    if (it->empty()) refuse("enum", path, "'enum' at " + path + " is empty: no value satisfies it");
    std::vector<Expr> kids;
    for (const auto& v : *it) kids.push_back(lit(v.dump(-1, ' ', false, json::error_handler_t::replace)));
    return alt(std::move(kids));
  }
  if (const auto it = node.find("anyOf"); it != node.end()) {
    if (!it->is_array() || it->empty()) refuse("anyOf", path, "'anyOf' at " + path + " must be a non-empty array");
    std::vector<Expr> kids;
    for (size_t i = 0; i < it->size(); ++i) {
      // Sibling keywords apply to every branch, as in `{"type": "object", "anyOf": [...]}`.
      json branch = (*it)[i];
      if (branch.is_object()) {
        for (const auto& [key, value] : node.items())
          if (key != "anyOf" && !annotations().count(key) && !branch.contains(key)) branch[key] = value;
      }
      kids.push_back(compile(branch, path + "/anyOf/" + std::to_string(i)));
    }
    return alt(std::move(kids));
  }
  const auto t = node.find("type");
  if (t == node.end()) {
    if (node.contains("properties") || node.contains("additionalProperties") || node.contains("required"))
      return compile_object(node, path);
    if (node.contains("items") || node.contains("minItems") || node.contains("maxItems"))
      return compile_array(node, path);
    if (node.contains("format") || node.contains("minLength") || node.contains("maxLength"))
      return compile_string(node, path);
    return any_value();
  }
  if (t->is_string()) return for_type(t->get<std::string>(), node, path);
  if (t->is_array() && !t->empty()) {
    std::vector<Expr> kids;
    for (const auto& one : *t) {
      if (!one.is_string()) refuse("type", path, "'type' at " + path + " must hold strings");
      kids.push_back(for_type(one.get<std::string>(), node, path));
    }
    return alt(std::move(kids));
  }
  refuse("type", path, "'type' at " + path + " must be a string or a non-empty array of strings");
}

Expr JsonGrammarBuilder::for_type(const std::string& type, const json& node, const std::string& path) {
  if (type == "object") return compile_object(node, path);
  if (type == "array") return compile_array(node, path);
  if (type == "string") return compile_string(node, path);
  if (type == "number" || type == "integer") {
    for (const char* k : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"})
      if (node.contains(k)) refuse_unsupported(k, path, std::string("'") + k + "' (at " + path + ") is not supported");
    return Expr::ref(type == "number" ? number_ : integer_);
  }
  if (type == "boolean") return alt({lit("true"), lit("false")});
  if (type == "null") return lit("null");
  refuse("type", path, "'type' \"" + type + "\" at " + path + " is not a JSON Schema type");
}

namespace {

int bound(const json& node, const char* key, int fallback, const std::string& path,
          const std::function<void(const std::string&, const std::string&, const std::string&)>& refuse) {
  const auto it = node.find(key);
  if (it == node.end()) return fallback;
  if (!it->is_number_integer() || it->get<int64_t>() < 0)
    refuse(key, path, std::string("'") + key + "' at " + path + " must be a non-negative integer");
  if (it->get<int64_t>() > kMaxRepeat)
    refuse(key, path, std::string("'") + key + "' at " + path + " is larger than the supported " + std::to_string(kMaxRepeat));
  return static_cast<int>(it->get<int64_t>());
}

}  // namespace

Expr JsonGrammarBuilder::compile_string(const json& node, const std::string& path) {
  auto r = [this](const std::string& k, const std::string& p, const std::string& m) { refuse(k, p, m); };
  if (const auto it = node.find("format"); it != node.end()) {
    const std::string f = it->is_string() ? it->get<std::string>() : it->dump();
    Expr body;
    if (f == "date") body = date_expr();
    else if (f == "time") body = time_expr();
    else if (f == "date-time") body = seq({date_expr(), lit("T"), time_expr()});
    else if (f == "uuid") body = uuid_expr();
    else refuse_unsupported("format", path, "'format' \"" + f + "\" at " + path + " is not supported (date, time, date-time, uuid are)");
    return seq({lit("\""), body, lit("\"")});
  }
  const int lo = bound(node, "minLength", 0, path, r);
  const int hi = bound(node, "maxLength", -1, path, r);
  if (hi >= 0 && hi < lo) refuse("maxLength", path, "'maxLength' at " + path + " is below 'minLength'");
  if (lo == 0 && hi < 0) return Expr::ref(string_);
  const int ch = b_.add("char" + std::to_string(counter_++), string_char());
  return seq({lit("\""), rep(Expr::ref(ch), lo, hi), lit("\"")});
}

Expr JsonGrammarBuilder::compile_array(const json& node, const std::string& path) {
  auto r = [this](const std::string& k, const std::string& p, const std::string& m) { refuse(k, p, m); };
  Expr item_value = any_value();
  if (const auto it = node.find("items"); it != node.end()) {
    if (it->is_array()) refuse_unsupported("items", path, "'items' as an array (at " + path + ") is not supported");
    item_value = compile(*it, path + "/items");
  }
  const int lo = bound(node, "minItems", 0, path, r);
  const int hi = bound(node, "maxItems", -1, path, r);
  if (hi >= 0 && hi < lo) refuse("maxItems", path, "'maxItems' at " + path + " is below 'minItems'");
  const int item = b_.add("item" + std::to_string(counter_++), seq({item_value, ws()}));
  const Expr more = seq({lit(","), ws(), Expr::ref(item)});
  Expr body;
  if (hi == 0) body = Expr::empty();
  else if (lo == 0) body = Expr::opt(seq({Expr::ref(item), rep(more, 0, hi < 0 ? -1 : hi - 1)}));
  else body = seq({Expr::ref(item), rep(more, lo - 1, hi < 0 ? -1 : hi - 1)});
  return seq({lit("["), ws(), body, lit("]")});
}

Expr JsonGrammarBuilder::compile_object(const json& node, const std::string& path) {
  const auto props = node.find("properties");
  const auto extra = node.find("additionalProperties");
  if (props != node.end() && !props->is_object())
    refuse("properties", path, "'properties' at " + path + " must be an object");
  if (extra != node.end() && !extra->is_boolean() && !extra->is_object())
    refuse("additionalProperties", path, "'additionalProperties' at " + path + " must be a boolean or a schema");
  std::set<std::string> required;
  if (const auto it = node.find("required"); it != node.end()) {
    if (!it->is_array()) refuse("required", path, "'required' at " + path + " must be an array of names");
    for (const auto& n : *it) {
      if (!n.is_string()) refuse("required", path, "'required' at " + path + " must be an array of names");
      if (props == node.end() || !props->contains(n.get<std::string>()))
        refuse("required", path, "'required' at " + path + " names \"" + n.get<std::string>() +
                                     "\", which is not in 'properties'");
      required.insert(n.get<std::string>());
    }
  }
  const bool has_props = props != node.end() && !props->empty();
  if (!has_props) {
    // `properties` given but empty: no properties (additionalProperties must then be absent or
    // false, as below). Neither given: a map of any keys to values of additionalProperties'
    // schema (any value when absent).
    const bool closed = extra != node.end() ? extra->is_boolean() && !extra->get<bool>() : props != node.end();
    if (closed) return seq({lit("{"), ws(), lit("}")});
    if (props != node.end())
      refuse("additionalProperties", path, "'additionalProperties' at " + path +
                                               " must be false (or absent) when 'properties' are given");
    const Expr value = extra != node.end() && extra->is_object() ? compile(*extra, path + "/additionalProperties")
                                                                 : any_value();
    const int member =
        b_.add("member" + std::to_string(counter_++), seq({Expr::ref(string_), ws(), lit(":"), ws(), value, ws()}));
    return seq({lit("{"), ws(), Expr::opt(seq({Expr::ref(member), Expr::star(seq({lit(","), ws(), Expr::ref(member)}))})),
                lit("}")});
  }
  if (extra != node.end() && !(extra->is_boolean() && !extra->get<bool>()))
    refuse("additionalProperties", path, "'additionalProperties' at " + path +
                                             " must be false (or absent) when 'properties' are given");
  // Properties in order; optional ones may be left out. first[i]: nothing written yet, from
  // property i on; rest[i]: something written, from property i on (so a comma comes first).
  std::vector<std::pair<std::string, const json*>> list;
  for (const auto& [key, value] : props->items()) list.push_back({key, &value});
  const size_t n = list.size();
  const int id = counter_++;
  std::vector<int> first(n + 1), rest(n + 1);
  for (size_t i = 0; i <= n; ++i) {
    first[i] = b_.declare("obj" + std::to_string(id) + "-first" + std::to_string(i));
    rest[i] = b_.declare("obj" + std::to_string(id) + "-rest" + std::to_string(i));
  }
  b_.define(first[n], Expr::empty());
  b_.define(rest[n], Expr::empty());
  for (size_t i = n; i-- > 0;) {
    const auto& [key, schema] = list[i];
    const Expr value = compile(*schema, path + "/properties/" + escape_pointer(key));
    const int prop = b_.add("prop" + std::to_string(counter_++), seq({lit(json_quote(key)), ws(), lit(":"), ws(), value, ws()}));
    const bool optional = !required.count(key);
    Expr f = seq({Expr::ref(prop), Expr::ref(rest[i + 1])});
    Expr r = seq({lit(","), ws(), Expr::ref(prop), Expr::ref(rest[i + 1])});
    b_.define(first[i], optional ? alt({f, Expr::ref(first[i + 1])}) : f);
    b_.define(rest[i], optional ? alt({r, Expr::ref(rest[i + 1])}) : r);
  }
  return seq({lit("{"), ws(), Expr::ref(first[0]), lit("}")});
}

Result<Grammar> compile_json_schema(const json& schema, SchemaError* error) {
  JsonGrammarBuilder jb;
  auto root = jb.schema(schema, error);
  if (!root) return root.status();
  const int r = jb.builder().add("root", std::move(root.value()));
  auto g = jb.builder().build(r);
  if (!g && error) *error = SchemaError{"schema", "#", g.status().message()};
  return g;
}

Result<Grammar> any_json_object_grammar() {
  JsonGrammarBuilder jb;
  const int r = jb.builder().add("root", jb.any_object());
  return jb.builder().build(r);
}

}  // namespace zs::engine::structured
