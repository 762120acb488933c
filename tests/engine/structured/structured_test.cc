// Structured outputs: the grammar matcher, the JSON Schema compiler (each keyword, and the
// refusal of the unsupported ones by name), the automaton against a reference validator on
// random strings, and the token masks against a brute-force scan of the vocabulary.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <functional>
#include <random>

#include "engine/model/llm.h"
#include "engine/structured/constraint.h"
#include "engine/structured/json_schema.h"
#include "engine/structured/token_index.h"
#include "test_util/temp_dir.h"

namespace zs::engine::structured {
namespace {

using ojson = nlohmann::ordered_json;

// Every byte as its own token (id = byte), plus EOS (256).
std::shared_ptr<const TokenIndex> byte_vocab() {
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; ++b) pieces.push_back(std::string(1, static_cast<char>(b)));
  pieces.push_back("");
  return std::make_shared<TokenIndex>(pieces, std::vector<int32_t>{256});
}

std::unique_ptr<Constraint> constraint_for(const std::string& schema_text) {
  SchemaError err;
  auto g = compile_json_schema(ojson::parse(schema_text), &err);
  EXPECT_TRUE(g.is_ok()) << schema_text << ": " << g.status().message();
  if (!g) return nullptr;
  return std::make_unique<Constraint>(std::move(g.value()), byte_vocab());
}

struct Case {
  const char* schema;
  std::vector<const char*> good;
  std::vector<const char*> bad;
};

TEST(JsonSchemaTest, EachSupportedKeyword) {
  const std::vector<Case> cases = {
      {R"({"type":"string"})", {R"("")", R"("a b")", R"("\u00e9\n\"")", "\"\xc3\xa9\""}, {R"(abc)", R"("a)", "\"\x01\"", "\"\xc3\""}},
      {R"({"type":"integer"})", {"0", "-12", "123456"}, {"01", "1.5", "-", "1e3", "\"1\""}},
      {R"({"type":"number"})", {"0", "-1.25", "3e10", "2.5E-3"}, {"1.", ".5", "+1", "1e"}},
      {R"({"type":"boolean"})", {"true", "false"}, {"True", "1", "null"}},
      {R"({"type":"null"})", {"null"}, {"nil", "0"}},
      {R"({"type":["string","null"]})", {"null", R"("x")"}, {"1"}},
      {R"({"enum":["red","green",3,null]})", {R"("red")", R"("green")", "3", "null"}, {R"("blue")", "4"}},
      {R"({"const":{"a":1}})", {R"({"a":1})"}, {R"({"a":2})", R"({})"}},
      {R"({"anyOf":[{"type":"integer"},{"type":"array","items":{"type":"boolean"}}]})",
       {"5", "[true, false]", "[]"},
       {R"("5")", "[1]"}},
      {R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"}},"required":["a","b"],"additionalProperties":false})",
       {R"({"a":1,"b":"x"})", R"({ "a" : 1 , "b" : "x" })", "{\n  \"a\": 1,\n  \"b\": \"x\"\n}"},
       {R"({"b":"x","a":1})", R"({"a":1})", R"({"a":1,"b":"x","c":2})", R"({"a":"1","b":"x"})"}},
      {R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"},"c":{"type":"integer"}},"required":["b"]})",
       {R"({"b":1})", R"({"a":1,"b":2})", R"({"b":2,"c":3})", R"({"a":1,"b":2,"c":3})"},
       {R"({})", R"({"a":1})", R"({"a":1,,"b":2})", R"({,"b":2})"}},
      {R"({"type":"object"})", {R"({})", R"({"x":[1,{"y":null}]})"}, {"[]", R"({"x"})"}},
      {R"({"type":"object","properties":{}})", {R"({})", R"({ })"}, {R"({"x":1})"}},
      {R"({"type":"object","additionalProperties":{"type":"integer"}})", {R"({"k":1,"j":2})", "{}"}, {R"({"k":"v"})"}},
      {R"({"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3})",
       {"[1]", "[1,2,3]", "[ 1 , 2 ]"},
       {"[]", "[1,2,3,4]", "[1,]"}},
      {R"({"type":"string","minLength":2,"maxLength":3})", {R"("ab")", R"("abc")", "\"\xc3\xa9\xc3\xa9\""}, {R"("a")", R"("abcd")"}},
      {R"({"type":"string","format":"date"})", {R"("2024-02-29")"}, {R"("2024-13-01")", R"("24-01-01")"}},
      {R"({"type":"string","format":"date-time"})", {R"("2024-02-29T12:30:00Z")", R"("2024-02-29T23:59:59.5+02:00")"}, {R"("2024-02-29 12:30:00Z")"}},
      {R"({"type":"string","format":"time"})", {R"("08:00:00Z")"}, {R"("25:00:00Z")"}},
      {R"({"type":"string","format":"uuid"})", {R"("123e4567-e89b-12d3-a456-426614174000")"}, {R"("123e4567")"}},
      {R"({"$defs":{"pt":{"type":"object","properties":{"x":{"type":"number"}},"required":["x"]}},"type":"array","items":{"$ref":"#/$defs/pt"}})",
       {R"([{"x":1},{"x":2.5}])"},
       {R"([{"y":1}])"}},
      {R"({"type":"object","properties":{"v":{"type":"integer"},"next":{"anyOf":[{"$ref":"#"},{"type":"null"}]}},"required":["v","next"]})",
       {R"({"v":1,"next":{"v":2,"next":null}})"},
       {R"({"v":1,"next":{"v":2}})"}},
      {R"({"type":"string","description":"annotations are ignored","title":"t","default":"d","examples":["e"]})", {R"("x")"}, {"1"}},
      {"true", {"1", R"({"a":[]})"}, {"{"}},
  };
  for (const auto& c : cases) {
    auto k = constraint_for(c.schema);
    ASSERT_TRUE(k) << c.schema;
    for (const char* s : c.good) EXPECT_TRUE(k->matches(s)) << c.schema << " should accept " << s;
    for (const char* s : c.bad) EXPECT_FALSE(k->matches(s)) << c.schema << " should refuse " << s;
  }
}

TEST(JsonSchemaTest, RefusesUnsupportedKeywordsByName) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      {R"({"type":"string","pattern":"^a+$"})", "pattern"},
      {R"({"type":"string","format":"email"})", "format"},
      {R"({"type":"integer","minimum":0})", "minimum"},
      {R"({"type":"number","maximum":5})", "maximum"},
      {R"({"type":"number","multipleOf":2})", "multipleOf"},
      {R"({"oneOf":[{"type":"string"}]})", "oneOf"},
      {R"({"allOf":[{"type":"string"}]})", "allOf"},
      {R"({"not":{"type":"string"}})", "not"},
      {R"({"type":"array","prefixItems":[{"type":"string"}]})", "prefixItems"},
      {R"({"type":"object","patternProperties":{"^a":{}}})", "patternProperties"},
      {R"({"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":true})", "additionalProperties"},
      {R"({"type":"object","properties":{"a":{"type":"integer"}},"required":["b"]})", "required"},
      {R"({"type":"widget"})", "type"},
      {R"({"enum":[]})", "enum"},
      {R"({"$ref":"#/$defs/missing"})", "$ref"},
      {R"({"$ref":"https://example.com/schema"})", "$ref"},
      {R"({"type":"object","properties":{"deep":{"type":"string","x-vendor":1}}})", "x-vendor"},
  };
  for (const auto& [schema, keyword] : cases) {
    SchemaError err;
    auto g = compile_json_schema(ojson::parse(schema), &err);
    ASSERT_FALSE(g.is_ok()) << schema;
    EXPECT_EQ(err.keyword, keyword) << schema << ": " << g.status().message();
    EXPECT_NE(g.status().message().find(keyword), std::string::npos) << g.status().message();
  }
}

TEST(JsonSchemaTest, RefusesSchemasWithoutFiniteOutput) {
  // A required property whose value must again hold the property, forever.
  SchemaError err;
  auto g = compile_json_schema(
      ojson::parse(R"({"type":"object","properties":{"a":{"$ref":"#"}},"required":["a"]})"), &err);
  ASSERT_FALSE(g.is_ok());
  EXPECT_NE(g.status().message().find("no finite output"), std::string::npos) << g.status().message();
}

// The json_schema_fuzz target's check, deterministic: random schemas built from supported and
// unsupported pieces are either refused naming a keyword, or compile to an automaton that
// walks without crashing and whose every complete output parses as JSON.
TEST(JsonSchemaTest, RandomSchemasAreRefusedByKeywordOrGiveParsableOutput) {
  std::mt19937 rng(5);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  std::function<ojson(int)> gen = [&](int depth) -> ojson {
    switch (depth > 3 ? pick(6) : pick(11)) {
      case 0: return {{"type", "string"}};
      case 1: return {{"type", "integer"}};
      case 2: return {{"type", "number"}, {"minimum", 1}};
      case 3: return {{"enum", {1, "a", nullptr}}};
      case 4: return {{"type", "boolean"}};
      case 5: return {{"type", "string"}, {"pattern", "x"}};
      case 6: return {{"type", "array"}, {"items", gen(depth + 1)}, {"maxItems", pick(4)}};
      case 7: return {{"anyOf", {gen(depth + 1), gen(depth + 1)}}};
      case 8: return {{"oneOf", {gen(depth + 1)}}};
      default: {
        ojson props = ojson::object();
        ojson req = ojson::array();
        for (int i = 0, n = pick(4); i < n; ++i) {
          props["p" + std::to_string(i)] = gen(depth + 1);
          if (pick(2)) req.push_back("p" + std::to_string(i));
        }
        return {{"type", "object"}, {"properties", props}, {"required", req}};
      }
    }
  };
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; ++b) pieces.push_back(std::string(1, static_cast<char>(b)));
  pieces.push_back("");
  auto idx = std::make_shared<TokenIndex>(pieces, std::vector<int32_t>{256});
  int compiled = 0, refused = 0;
  for (int iter = 0; iter < 300; ++iter) {
    const ojson schema = gen(0);
    SchemaError err;
    auto g = compile_json_schema(schema, &err);
    if (!g) {
      EXPECT_FALSE(err.keyword.empty()) << schema.dump();
      ++refused;
      continue;
    }
    ++compiled;
    Constraint c(std::move(g.value()), idx);
    int32_t s = c.start();
    std::string out;
    // Prefer closing bytes so that outputs complete: the lowest allowed byte among the last few.
    for (int step = 0; step < 2000 && s >= 0; ++step) {
      const auto& allowed = c.allowed(s);
      ASSERT_FALSE(allowed.empty()) << schema.dump() << " stuck after " << out;
      if (allowed.back() == 256 && (allowed.size() == 1 || pick(3) == 0)) break;  // EOS allowed: complete
      int32_t t = allowed[static_cast<size_t>(pick(static_cast<int>(allowed.size())))];
      if (t == 256) break;
      for (int32_t closing : {'"', '}', ']', '0', 'n'})
        if (pick(2) && std::binary_search(allowed.begin(), allowed.end(), closing)) t = closing;
      out += static_cast<char>(t);
      s = c.next_token(s, t);
    }
    if (s >= 0 && c.accepting(s)) {
      EXPECT_NO_THROW({
        const ojson parsed = ojson::parse(out);
        (void)parsed;
      }) << schema.dump() << "\n" << out;
    }
  }
  EXPECT_GT(compiled, 30);
  EXPECT_GT(refused, 30);
}

TEST(GrammarTest, RepetitionDoesNotGrowTheStack) {
  auto g = any_json_object_grammar();
  ASSERT_TRUE(g.is_ok());
  GrammarStacks m(g.value());
  std::string text = "{\"k\":\"" + std::string(5000, 'a') + "\"}";
  EXPECT_TRUE(m.matches(text));
  Constraint c(std::move(g.value()), byte_vocab());
  EXPECT_TRUE(c.matches(text));
  EXPECT_LT(c.n_states(), 200u);  // a long string revisits one state
}

// ---- the automaton against a reference validator, on random strings ----

// Validates `v` (parsed keeping the text's key order) against the test schemas' subset.
bool valid(const ojson& v, const ojson& schema) {
  if (schema.contains("enum")) {
    for (const auto& e : schema["enum"])
      if (e == v) return true;
    return false;
  }
  if (schema.contains("anyOf")) {
    for (const auto& s : schema["anyOf"])
      if (valid(v, s)) return true;
    return false;
  }
  const std::string t = schema.value("type", "");
  if (t == "integer") return v.is_number_integer();
  if (t == "number") return v.is_number();
  if (t == "string") return v.is_string();
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  if (t == "array") {
    if (!v.is_array()) return false;
    for (const auto& x : v)
      if (!valid(x, schema["items"])) return false;
    return true;
  }
  if (t == "object") {
    if (!v.is_object()) return false;
    const auto& props = schema["properties"];
    // Keys must be declared properties, in declared order (what the grammar generates).
    auto pit = props.begin();
    for (auto it = v.begin(); it != v.end(); ++it) {
      while (pit != props.end() && pit.key() != it.key()) ++pit;
      if (pit == props.end()) return false;
      if (!valid(it.value(), pit.value())) return false;
      ++pit;
    }
    for (const auto& r : schema["required"])
      if (!v.contains(r.get<std::string>())) return false;
    return true;
  }
  return false;
}

// Random JSON text that often but not always fits `schema`.
void gen(std::mt19937& rng, const ojson& schema, std::string& out, int depth) {
  auto coin = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  auto ws = [&] {  // what the grammar allows: nothing, a space, or a line break and indent
    const int k = coin(3);
    if (k == 1) out += " ";
    if (k == 2) out += "\n" + std::string(static_cast<size_t>(coin(3)), ' ');
  };
  if (coin(12) == 0 || depth > 4) {  // something of another kind
    const char* any[] = {"1", "-2.5", "\"s\"", "true", "null", "[]", "{}", "\"\\u00e9\\\"\""};
    out += any[coin(8)];
    return;
  }
  if (schema.contains("enum")) {
    out += schema["enum"][static_cast<size_t>(coin(static_cast<int>(schema["enum"].size())))].dump();
    return;
  }
  if (schema.contains("anyOf")) return gen(rng, schema["anyOf"][static_cast<size_t>(coin(2))], out, depth);
  const std::string t = schema.value("type", "");
  if (t == "integer") out += std::to_string(coin(2000) - 1000);
  else if (t == "number") out += std::to_string(coin(100) - 50) + (coin(2) ? ".5" : "") + (coin(4) == 0 ? "e3" : "");
  else if (t == "string") out += std::vector<std::string>{"\"\"", "\"ab c\"", "\"\\n\\t\"", "\"\xc3\xa9t\xc3\xa9\"", "\"\\ud83d\\ude00\""}[static_cast<size_t>(coin(5))];
  else if (t == "boolean") out += coin(2) ? "true" : "false";
  else if (t == "null") out += "null";
  else if (t == "array") {
    out += "[";
    ws();
    const int n = coin(4);
    for (int i = 0; i < n; ++i) {
      if (i) out += ",", ws();
      gen(rng, schema["items"], out, depth + 1);
      ws();
    }
    out += "]";
  } else if (t == "object") {
    out += "{";
    ws();
    bool first = true;
    for (const auto& [k, s] : schema["properties"].items()) {
      if (coin(4) == 0) continue;
      if (!first) out += ",", ws();
      first = false;
      out += "\"" + k + "\"";
      ws();
      out += ":";
      ws();
      gen(rng, s, out, depth + 1);
      ws();
    }
    out += "}";
  }
}

// The grammar's whitespace rule, checked on the text outside strings: every run of whitespace
// is one space, or one line break followed by at most 20 spaces or tabs.
bool whitespace_as_generated(const std::string& text) {
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      ++i;
      continue;
    }
    if (c == '"') in_string = true;
    if (c != ' ' && c != '\n' && c != '\t' && c != '\r') {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && (text[j] == ' ' || text[j] == '\n' || text[j] == '\t' || text[j] == '\r')) ++j;
    const std::string run = text.substr(i, j - i);
    const bool ok = run == " " || (run[0] == '\n' && run.size() <= 21 &&
                                   run.find_first_not_of(" \t", 1) == std::string::npos);
    if (!ok) return false;
    i = j;
  }
  return true;
}

TEST(ConstraintFuzzTest, AgreesWithReferenceValidator) {
  const ojson schema = ojson::parse(R"({
    "type": "object",
    "properties": {
      "name": {"type": "string"},
      "age": {"type": "integer"},
      "score": {"type": "number"},
      "tags": {"type": "array", "items": {"type": "string"}},
      "kind": {"enum": ["a", "b", 3]},
      "ok": {"type": "boolean"},
      "nested": {"type": "object", "properties": {"x": {"type": "null"}, "y": {"anyOf": [{"type": "integer"}, {"type": "string"}]}}, "required": ["y"]}
    },
    "required": ["name", "age"],
    "additionalProperties": false
  })");
  auto g = compile_json_schema(schema);
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  Constraint c(std::move(g.value()), byte_vocab());
  std::mt19937 rng(::testing::UnitTest::GetInstance()->random_seed() + 1234u);
  const std::string alphabet = "{}[]\",: 0123456789.-eEtrufnal\\x";
  int accepted = 0, refused = 0;
  for (int iter = 0; iter < 6000; ++iter) {
    std::string text;
    gen(rng, schema, text, 0);
    if (rng() % 3 == 0 && !text.empty()) {  // mutate: replace, insert, delete or truncate
      const size_t at = rng() % text.size();
      switch (rng() % 4) {
        case 0: text[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: text.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
        case 2: text.erase(at, 1); break;
        default: text.resize(at); break;
      }
    }
    bool expect = false;
    const bool padded = !text.empty() && (std::isspace(static_cast<unsigned char>(text.front())) ||
                                          std::isspace(static_cast<unsigned char>(text.back())));
    if (!padded && whitespace_as_generated(text)) {
      try {
        expect = valid(ojson::parse(text), schema);
      } catch (const std::exception& e) {
        // JSON's grammar allows a lone surrogate escape ("\ud83d"); the reference parser does
        // not, and neither does the constraint need to: skip those.
        if (std::string(e.what()).find("surrogate") != std::string::npos) continue;
        expect = false;
      }
    }
    EXPECT_EQ(c.matches(text), expect) << text;
    (expect ? accepted : refused)++;
  }
  EXPECT_GT(accepted, 300);  // both sides exercised
  EXPECT_GT(refused, 300);
}

// ---- token masks against a brute-force scan ----

// The tokens allowed in `state` by testing every token's bytes one by one.
std::vector<int32_t> brute_force_mask(Constraint& c, int32_t state) {
  std::vector<int32_t> out;
  const TokenIndex& idx = c.index();
  for (int32_t t = 0; t < idx.n_vocab(); ++t) {
    const auto& eog = idx.eog();
    if (std::find(eog.begin(), eog.end(), t) != eog.end()) {
      if (c.accepting(state)) out.push_back(t);
      continue;
    }
    const std::string& p = idx.piece(t);
    if (p.empty()) continue;
    int32_t s = state;
    for (char ch : p) {
      s = c.next_byte(s, static_cast<uint8_t>(ch));
      if (s < 0) break;
    }
    if (s >= 0) out.push_back(t);
  }
  return out;
}

void walk_and_compare(Constraint& c, uint32_t seed, int steps) {
  std::mt19937 rng(seed);
  int32_t state = c.start();
  std::vector<int32_t> scratch;
  for (int i = 0; i < steps && state >= 0; ++i) {
    const auto& fast = c.allowed(state, &scratch);
    ASSERT_EQ(fast, brute_force_mask(c, state)) << "step " << i;
    if (fast.empty()) break;
    const int32_t t = fast[rng() % fast.size()];
    const auto& eog = c.index().eog();
    if (std::find(eog.begin(), eog.end(), t) != eog.end()) break;
    state = c.next_token(state, t);
    ASSERT_GE(state, 0);
  }
}

TEST(TokenMaskTest, MatchesBruteForceOnSyntheticVocabulary) {
  // Pieces that cross JSON syntax, split escapes and split UTF-8 characters.
  std::vector<std::string> pieces = {"",     "{",     "}",     "{\"",  "\":",   "\",\"", "[",   "]",    "\"",   "\\",
                                     "\\u",  "00e9",  "\\\"",  "n",    "ull",   "true",  "fal",  "se",   ",",    " ",
                                     "\n  ", "1",     "23",    "-",    ".",     "5e",    "+",    "\xc3", "\xa9", "\xc3\xa9",
                                     "\xe2\x82", "\xac\"", "name", "age", "\"name\"", "\"age\": ", "a b", "}\n", "]}", "x"};
  for (int b = 0x20; b < 0x7f; ++b) pieces.push_back(std::string(1, static_cast<char>(b)));
  auto idx = std::make_shared<TokenIndex>(pieces, std::vector<int32_t>{0});
  auto g = compile_json_schema(ojson::parse(
      R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"list":{"type":"array","items":{"type":"number"}}},"required":["name","age"]})"));
  ASSERT_TRUE(g.is_ok());
  Constraint c(std::move(g.value()), idx);
  for (uint32_t seed = 0; seed < 20; ++seed) walk_and_compare(c, seed, 60);
  auto any = any_json_object_grammar();
  Constraint c2(std::move(any.value()), idx);
  for (uint32_t seed = 0; seed < 20; ++seed) walk_and_compare(c2, seed, 60);
}

TEST(TokenMaskTest, OverTheMemoryBudgetMasksAreComputedIntoScratch) {
  auto llm = Llm::load(zs::testing::golden_model("stories260K.gguf"));
  ASSERT_TRUE(llm.is_ok());
  auto idx = std::make_shared<TokenIndex>(*llm->tokenizer);
  Constraint c(std::move(any_json_object_grammar().value()), idx, 65536, /*mask_budget_bytes=*/0);
  std::vector<int32_t> scratch;
  EXPECT_EQ(&c.allowed(c.start(), &scratch), &scratch);  // nothing cached
  for (uint32_t seed = 0; seed < 3; ++seed) walk_and_compare(c, seed, 30);
}

TEST(TokenMaskTest, MatchesBruteForceOnARealVocabulary) {
  auto llm = Llm::load(zs::testing::golden_model("stories260K.gguf"));
  ASSERT_TRUE(llm.is_ok()) << llm.status().message();
  auto idx = std::make_shared<TokenIndex>(*llm->tokenizer);
  auto g = any_json_object_grammar();
  Constraint c(std::move(g.value()), idx);
  EXPECT_FALSE(c.allowed(c.start()).empty());  // '{' is reachable through byte tokens
  for (uint32_t seed = 0; seed < 5; ++seed) walk_and_compare(c, seed, 40);
}

TEST(TokenMaskTest, VocabularyWithoutBracesCannotStartAnObject) {
  auto llm = Llm::load(zs::testing::golden_model("TinyStories-656K-Q8_0.gguf"));
  ASSERT_TRUE(llm.is_ok()) << llm.status().message();
  auto idx = std::make_shared<TokenIndex>(*llm->tokenizer);
  Constraint c(std::move(any_json_object_grammar().value()), idx);
  EXPECT_TRUE(c.allowed(c.start()).empty());
}

}  // namespace
}  // namespace zs::engine::structured
