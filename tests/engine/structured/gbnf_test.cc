// GBNF: grammars in llama.cpp's notation compile to byte grammars that accept exactly their
// language; character classes are checked against a plain range test, bad grammars get errors
// naming line and column, and no input crashes the parser.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "engine/structured/gbnf.h"

namespace zs::engine::structured {
namespace {

Grammar compiled(const std::string& text) {
  auto g = compile_gbnf(text);
  EXPECT_TRUE(g.is_ok()) << g.status().message() << "\n" << text;
  return g.is_ok() ? std::move(g.value()) : Grammar{};
}

bool accepts(const Grammar& g, const std::string& s) { return GrammarStacks(g).matches(s); }

std::string error_of(const std::string& text) {
  auto g = compile_gbnf(text);
  EXPECT_FALSE(g.is_ok()) << text;
  return g.is_ok() ? "" : g.status().message();
}

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

TEST(Gbnf, AJsonLikeGrammarAcceptsItsLanguageOnly) {
  const Grammar g = compiled(R"(# a list of small records
root   ::= "[" ws ( item ( "," ws item )* )? "]"
item   ::= "{" ws "\"id\":" ws num "," ws "\"ok\":" ws ( "true" | "false" ) ws "}"
num    ::= "-"? [1-9] [0-9]{0,3} | "0"
ws     ::= [ \t\n]*
)");
  EXPECT_TRUE(accepts(g, "[]"));
  EXPECT_TRUE(accepts(g, "[{\"id\":12,\"ok\":true}]"));
  EXPECT_TRUE(accepts(g, "[ {\"id\": -9999, \"ok\": false }, {\"id\":0,\"ok\":true}]"));
  EXPECT_FALSE(accepts(g, "[{\"id\":12345,\"ok\":true}]"));  // {0,3} after the first digit
  EXPECT_FALSE(accepts(g, "[{\"id\":01,\"ok\":true}]"));
  EXPECT_FALSE(accepts(g, "[{\"id\":1,\"ok\":maybe}]"));
  EXPECT_FALSE(accepts(g, "[{\"id\":1,\"ok\":true}"));
}

TEST(Gbnf, RepetitionsAlternativesAcrossLinesAndGroups) {
  const Grammar g = compiled("root ::= a{2} b{1,} c{,2} d{2,3} (\n  \"x\" |\n  \"y\"\n)\na ::= \"a\"\nb ::= \"b\"\n"
                             "c ::= \"c\"\nd ::= \"d\" |\n  \"e\"");
  EXPECT_TRUE(accepts(g, "aabddx"));
  EXPECT_TRUE(accepts(g, "aabbbccdeey"));
  EXPECT_FALSE(accepts(g, "abddx"));
  EXPECT_FALSE(accepts(g, "aaddx"));
  EXPECT_FALSE(accepts(g, "aabcccddx"));
  EXPECT_FALSE(accepts(g, "aabdx"));
  EXPECT_FALSE(accepts(g, "aabddddx"));
  const Grammar dot = compiled("root ::= . \"!\"");
  EXPECT_TRUE(accepts(dot, "a!"));
  EXPECT_TRUE(accepts(dot, "\xE2\x82\xAC!"));  // one character of three bytes
  EXPECT_FALSE(accepts(dot, "ab!"));
  EXPECT_FALSE(accepts(dot, "\xE2\x82!"));  // not UTF-8
}

TEST(Gbnf, EscapesInLiteralsAndClasses) {
  const Grammar g = compiled(R"(root ::= "\x41\u00e9\n\"\\" [\]\-\^] [\U0001F600-\U0001F64F])");
  EXPECT_TRUE(accepts(g, "A\xC3\xA9\n\"\\]" + utf8(0x1F600)));
  EXPECT_TRUE(accepts(g, "A\xC3\xA9\n\"\\-" + utf8(0x1F64F)));
  EXPECT_TRUE(accepts(g, "A\xC3\xA9\n\"\\^" + utf8(0x1F610)));
  EXPECT_FALSE(accepts(g, "A\xC3\xA9\n\"\\a" + utf8(0x1F600)));
  EXPECT_FALSE(accepts(g, "A\xC3\xA9\n\"\\]" + utf8(0x1F650)));
  // A literal written as UTF-8 in the grammar text.
  EXPECT_TRUE(accepts(compiled("root ::= \"ça\""), "\xC3\xA7" "a"));
}

// Every class against a direct range check, over code points of every encoded length and the
// edges of each (surrogates are never characters).
TEST(Gbnf, CharacterClassesMatchAPlainRangeCheck) {
  struct Case {
    std::string cls;
    std::vector<std::pair<uint32_t, uint32_t>> ranges;
    bool negated;
  };
  const std::vector<Case> cases = {
      {"[a-z]", {{'a', 'z'}}, false},
      {"[^a-z0-9]", {{'a', 'z'}, {'0', '9'}}, true},
      {"[\\u0080-\\u07FF]", {{0x80, 0x7FF}}, false},
      {"[\\u00e9-\\u4e2d]", {{0xE9, 0x4E2D}}, false},
      {"[\\u07ff-\\U00010001]", {{0x7FF, 0x10001}}, false},
      {"[\\x20-\\U0010FFFF]", {{0x20, 0x10FFFF}}, false},
      {"[^\\u0041\\uD7FF\\uE000]", {{0x41, 0x41}, {0xD7FF, 0xD7FF}, {0xE000, 0xE000}}, true},
      {"[\\U0001F000-\\U0001F0FF\\u0100-\\u0140]", {{0x1F000, 0x1F0FF}, {0x100, 0x140}}, false},
  };
  std::mt19937 rng(7);
  std::vector<uint32_t> probes = {0,      0x1F,   0x20,    0x40,    0x41,    0x42,     0x7F,     0x80,
                                  0xE8,   0xE9,   0x140,   0x141,   0x7FF,   0x800,    0x4E2D,   0x4E2E,
                                  0xD7FF, 0xE000, 0xE001,  0xFFFF,  0x10000, 0x10001,  0x10002,  0x1F000,
                                  0x1F0FF, 0x1F100, 0x10FFFF};
  for (int i = 0; i < 300; ++i) probes.push_back(std::uniform_int_distribution<uint32_t>(0, 0x10FFFF)(rng));
  for (const Case& c : cases) {
    const Grammar g = compiled("root ::= " + c.cls);
    for (uint32_t cp : probes) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      bool in = false;
      for (const auto& [lo, hi] : c.ranges) in |= cp >= lo && cp <= hi;
      EXPECT_EQ(accepts(g, utf8(cp)), in != c.negated) << c.cls << " U+" << std::hex << cp;
    }
    // Encoded surrogates and overlong forms are never accepted.
    EXPECT_FALSE(accepts(g, "\xED\xA0\x80")) << c.cls;
    EXPECT_FALSE(accepts(g, "\xC0\x80")) << c.cls;
  }
}

TEST(Gbnf, ErrorsNameLineColumnAndTheProblem) {
  struct Case {
    std::string text, expected;
  };
  const std::vector<Case> cases = {
      {"root ::= item\n", "line 1, column 10: rule 'item' is used but never defined"},
      {"root ::= \"a\"\nroot ::= \"b\"", "line 2, column 1: rule 'root' is defined twice"},
      {"start ::= \"a\"", "no rule named 'root'"},
      {"root ::= \"a\\q\"", "line 1, column 12: unknown escape '\\q'"},
      {"root ::= \"abc", "unterminated literal"},
      {"root ::= [abc", "line 1, column 10: unterminated character class"},
      {"root ::= ( \"a\" ", "line 1, column 10: unbalanced '('"},
      {"root ::= \"a\" )", "unbalanced ')'"},
      {"root ::= \"a\"{2000}", "repetition bound over 1000"},
      {"root ::= \"a\"{3,2}", "repetition bounds run backwards"},
      {"root ::= [z-a]", "character range runs backwards"},
      {"root = \"a\"", "expected '::=' after the rule name 'root'"},
      {"root ::= \"\\uD800\"", "escape names no Unicode character"},
      {"root ::= \"a\" other ::= \"b\"", "a new rule begins before this one ends"},
      {"root ::= \"\xFF\"", "not valid UTF-8"},
      {"root ::= " + std::string(70, '(') + "\"a\"" + std::string(70, ')'), "groups nested deeper than 64"},
      {"root ::= root", "grammar"},  // no finite string: the builder's own check
  };
  for (const Case& c : cases) {
    const std::string e = error_of(c.text);
    EXPECT_NE(e.find(c.expected), std::string::npos) << c.text << "\n=> " << e;
  }
}

// Random bytes and random edits of a valid grammar: the parser answers (a grammar or an error
// naming the place), never crashes or hangs.
TEST(Gbnf, FuzzedInputsGetAGrammarOrAnError) {
  const std::string seed = "root ::= \"[\" ws (item (\",\" ws item)*)? \"]\"\nitem ::= [a-z\\u00e9]+ | \"\\x41\"{1,3}\n"
                           "ws ::= [ \\t\\n]* # spaces\n";
  const std::string alphabet = "()[]{}|*+?.\"\\^-:=# \n\tabxuU0129,";
  std::mt19937 rng(11);
  int ok = 0, refused = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string text;
    if (i % 3 == 0) {
      const size_t n = rng() % 64;
      for (size_t k = 0; k < n; ++k) text += static_cast<char>(rng() % 256);
    } else {
      text = seed;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < edits; ++k) {
        const size_t at = rng() % (text.size() + 1);
        switch (rng() % 3) {
          case 0: text.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
          case 1: if (at < text.size()) text.erase(at, 1); break;
          default: if (at < text.size()) text[at] = alphabet[rng() % alphabet.size()]; break;
        }
      }
    }
    auto g = compile_gbnf(text);
    if (g.is_ok()) {
      ++ok;
      (void)GrammarStacks(g.value()).matches("[abc]");
    } else {
      ++refused;
      EXPECT_NE(g.status().message().find("grammar: "), std::string::npos) << g.status().message();
    }
  }
  EXPECT_GT(ok, 100);
  EXPECT_GT(refused, 100);
}

}  // namespace
}  // namespace zs::engine::structured
