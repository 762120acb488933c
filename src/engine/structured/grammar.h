#pragma once
// A context-free grammar over bytes, the common form of every output constraint (JSON Schema,
// any JSON object, tool calls). Built with GrammarBuilder from small expressions (byte sets,
// sequences, alternatives, bounded or unbounded repetition, references to named rules), then
// lowered to flat rules whose positions a pushdown matcher (GrammarStacks) walks byte by byte.
// Repetition lowers to right recursion and a reference in tail position pushes nothing, so
// `x*` matches without growing the stack; only real nesting (objects in arrays...) does.
#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace zs::engine::structured {

using ByteSet = std::bitset<256>;

// One expression of a rule's body.
struct Expr {
  enum class Kind { kBytes, kSeq, kAlt, kRef, kRepeat };
  Kind kind = Kind::kSeq;  // an empty sequence matches the empty string
  ByteSet bytes;           // kBytes: one byte out of this set
  std::vector<Expr> kids;  // kSeq, kAlt; kRepeat: exactly one
  int rule = -1;           // kRef
  int min = 0, max = -1;   // kRepeat; max -1 = unbounded

  static Expr byte_set(const ByteSet& s);
  static Expr byte_range(uint8_t lo, uint8_t hi);
  static Expr literal(std::string_view text);
  static Expr seq(std::vector<Expr> kids);
  static Expr alt(std::vector<Expr> kids);
  static Expr ref(int rule);
  static Expr repeat(Expr e, int min, int max);
  static Expr opt(Expr e) { return repeat(std::move(e), 0, 1); }
  static Expr star(Expr e) { return repeat(std::move(e), 0, -1); }
  static Expr plus(Expr e) { return repeat(std::move(e), 1, -1); }
  static Expr empty() { return Expr{}; }
};

// The lowered grammar: every rule is a list of alternatives; an alternative is a run of
// elements in `elems` closed by a kEnd element.
struct Grammar {
  struct Elem {
    enum class Kind : uint8_t { kBytes, kRef, kEnd };
    Kind kind = Kind::kEnd;
    uint32_t arg = 0;  // kBytes: index into sets; kRef: rule id
  };
  std::vector<Elem> elems;
  std::vector<ByteSet> sets;
  std::vector<std::vector<uint32_t>> rules;  // per rule: start position of each alternative
  std::vector<std::string> names;
  uint32_t root = 0;
};

class GrammarBuilder {
 public:
  // A new rule, defined later (so rules may refer to each other and to themselves).
  int declare(std::string name);
  void define(int rule, Expr body);
  int add(std::string name, Expr body) {
    const int r = declare(std::move(name));
    define(r, std::move(body));
    return r;
  }
  // Lowers the rules. Fails when a rule was declared but never defined, or when the root
  // admits no finite string (every way through it recurses forever or uses an empty set).
  core::Result<Grammar> build(int root);

 private:
  struct Pending {
    std::string name;
    Expr body;
    bool defined = false;
  };
  std::vector<Pending> rules_;
};

// The matcher: the set of pushdown stacks that the bytes so far leave open. Each stack lists
// grammar positions, innermost last; its top is always a kBytes element, and an empty stack
// means the root is complete.
class GrammarStacks {
 public:
  using Stack = std::vector<uint32_t>;
  // Stacks deeper than max_depth are dropped (their nesting is refused).
  explicit GrammarStacks(const Grammar& g, size_t max_depth = 128) : g_(&g), max_depth_(max_depth) {}
  std::vector<Stack> initial() const;
  std::vector<Stack> advance(const std::vector<Stack>& stacks, uint8_t byte) const;
  static bool accepting(const std::vector<Stack>& stacks);
  // True when `text` is a complete sentence of the grammar.
  bool matches(std::string_view text) const;

 private:
  void expand(Stack& st, std::vector<Stack>& out, int depth) const;
  static void normalize(std::vector<Stack>& stacks);
  const Grammar* g_;
  size_t max_depth_;
};

}  // namespace zs::engine::structured
