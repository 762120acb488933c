#include "engine/structured/grammar.h"

#include <algorithm>
#include <map>

namespace zs::engine::structured {

using core::Result;
using core::Status;

Expr Expr::byte_set(const ByteSet& s) {
  Expr e;
  e.kind = Kind::kBytes;
  e.bytes = s;
  return e;
}

Expr Expr::byte_range(uint8_t lo, uint8_t hi) {
  ByteSet s;
  for (int b = lo; b <= hi; ++b) s.set(static_cast<size_t>(b));
  return byte_set(s);
}

Expr Expr::literal(std::string_view text) {
  Expr e;
  for (char c : text) {
    ByteSet s;
    s.set(static_cast<uint8_t>(c));
    e.kids.push_back(byte_set(s));
  }
  return e;
}

Expr Expr::seq(std::vector<Expr> kids) {
  Expr e;
  e.kids = std::move(kids);
  return e;
}

Expr Expr::alt(std::vector<Expr> kids) {
  Expr e;
  e.kind = Kind::kAlt;
  e.kids = std::move(kids);
  return e;
}

Expr Expr::ref(int rule) {
  Expr e;
  e.kind = Kind::kRef;
  e.rule = rule;
  return e;
}

Expr Expr::repeat(Expr inner, int min, int max) {
  Expr e;
  e.kind = Kind::kRepeat;
  e.kids.push_back(std::move(inner));
  e.min = min;
  e.max = max;
  return e;
}

int GrammarBuilder::declare(std::string name) {
  rules_.push_back({std::move(name), Expr{}, false});
  return static_cast<int>(rules_.size()) - 1;
}

void GrammarBuilder::define(int rule, Expr body) {
  rules_[static_cast<size_t>(rule)].body = std::move(body);
  rules_[static_cast<size_t>(rule)].defined = true;
}

namespace {

struct Sym {
  bool ref = false;
  uint32_t arg = 0;
};
using Alt = std::vector<Sym>;

class Lowerer {
 public:
  std::vector<std::vector<Alt>> alts;  // per rule
  std::vector<std::string> names;
  std::vector<ByteSet> sets;

  uint32_t set_id(const ByteSet& s) {
    const std::string key = s.to_string();
    auto [it, fresh] = ids_.emplace(key, static_cast<uint32_t>(sets.size()));
    if (fresh) sets.push_back(s);
    return it->second;
  }

  uint32_t new_rule(const std::string& name) {
    alts.emplace_back();
    names.push_back(name);
    return static_cast<uint32_t>(alts.size() - 1);
  }

  void define(uint32_t rule, const Expr& body) {
    const std::string base = names[rule];  // a copy: new rules grow `names`
    std::vector<Alt> out;
    if (body.kind == Expr::Kind::kAlt) {
      for (const Expr& k : body.kids) {
        Alt a;
        flatten(k, a, base);
        out.push_back(std::move(a));
      }
    } else {
      Alt a;
      flatten(body, a, base);
      out.push_back(std::move(a));
    }
    alts[rule] = std::move(out);
  }

  void flatten(const Expr& e, Alt& out, const std::string& base) {
    switch (e.kind) {
      case Expr::Kind::kBytes: out.push_back({false, set_id(e.bytes)}); return;
      case Expr::Kind::kSeq:
        for (const Expr& k : e.kids) flatten(k, out, base);
        return;
      case Expr::Kind::kRef: out.push_back({true, static_cast<uint32_t>(e.rule)}); return;
      case Expr::Kind::kAlt: {
        const uint32_t r = new_rule(base + "-alt");
        define(r, e);
        out.push_back({true, r});
        return;
      }
      case Expr::Kind::kRepeat: {
        const Expr& kid = e.kids.front();
        Alt one;  // the repeated item as symbols: a rule of its own unless it is one symbol
        if (kid.kind == Expr::Kind::kBytes || kid.kind == Expr::Kind::kRef) {
          flatten(kid, one, base);
        } else {
          const uint32_t r = new_rule(base + "-item");
          define(r, kid);
          one.push_back({true, r});
        }
        for (int i = 0; i < e.min; ++i) out.insert(out.end(), one.begin(), one.end());
        if (e.max < 0) {
          const uint32_t r = new_rule(base + "-star");
          Alt more = one;
          more.push_back({true, r});
          alts[r] = {more, Alt{}};
          out.push_back({true, r});
        } else if (e.max > e.min) {
          int32_t prev = -1;
          for (int k = 0; k < e.max - e.min; ++k) {
            const uint32_t r = new_rule(base + "-opt");
            Alt more = one;
            if (prev >= 0) more.push_back({true, static_cast<uint32_t>(prev)});
            alts[r] = {more, Alt{}};
            prev = static_cast<int32_t>(r);
          }
          out.push_back({true, static_cast<uint32_t>(prev)});
        }
        return;
      }
    }
  }

 private:
  std::map<std::string, uint32_t> ids_;
};

}  // namespace

Result<Grammar> GrammarBuilder::build(int root) {
  Lowerer lw;
  for (const Pending& p : rules_) lw.new_rule(p.name);
  for (size_t r = 0; r < rules_.size(); ++r) {
    if (!rules_[r].defined) return Status::error("grammar rule '" + rules_[r].name + "' is never defined");
    lw.define(static_cast<uint32_t>(r), rules_[r].body);
  }
  // Productive rules: those that derive some finite string. Alternatives that use an
  // unproductive rule or an empty byte set are dropped, so that every position the matcher
  // can reach can still be completed.
  const size_t n = lw.alts.size();
  std::vector<bool> productive(n, false);
  auto sym_ok = [&](const Sym& s) { return s.ref ? productive[s.arg] : lw.sets[s.arg].any(); };
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < n; ++r) {
      if (productive[r]) continue;
      for (const Alt& a : lw.alts[r]) {
        if (std::all_of(a.begin(), a.end(), sym_ok)) {
          productive[r] = true;
          changed = true;
          break;
        }
      }
    }
  }
  if (root < 0 || static_cast<size_t>(root) >= n) return Status::error("grammar root out of range");
  if (!productive[static_cast<size_t>(root)])
    return Status::error("the grammar admits no finite output (every way through '" +
                         rules_[static_cast<size_t>(root)].name + "' recurses forever or needs something impossible)");
  Grammar g;
  g.sets = lw.sets;
  g.names = std::move(lw.names);
  g.rules.resize(n);
  g.root = static_cast<uint32_t>(root);
  for (size_t r = 0; r < n; ++r) {
    for (const Alt& a : lw.alts[r]) {
      if (!std::all_of(a.begin(), a.end(), sym_ok)) continue;
      g.rules[r].push_back(static_cast<uint32_t>(g.elems.size()));
      for (const Sym& s : a)
        g.elems.push_back({s.ref ? Grammar::Elem::Kind::kRef : Grammar::Elem::Kind::kBytes, s.arg});
      g.elems.push_back({Grammar::Elem::Kind::kEnd, 0});
    }
  }
  return g;
}

void GrammarStacks::expand(Stack& st, std::vector<Stack>& out, int depth) const {
  if (depth > 512 || st.size() > max_depth_) return;  // left recursion or nesting too deep
  if (st.empty()) {
    out.push_back(st);
    return;
  }
  const uint32_t p = st.back();
  const Grammar::Elem& e = g_->elems[p];
  switch (e.kind) {
    case Grammar::Elem::Kind::kBytes: out.push_back(st); return;
    case Grammar::Elem::Kind::kEnd:
      st.pop_back();
      expand(st, out, depth + 1);
      st.push_back(p);
      return;
    case Grammar::Elem::Kind::kRef: {
      st.pop_back();
      // A reference in tail position returns nowhere: nothing to push.
      const bool ret = g_->elems[p + 1].kind != Grammar::Elem::Kind::kEnd;
      if (ret) st.push_back(p + 1);
      for (uint32_t start : g_->rules[e.arg]) {
        st.push_back(start);
        expand(st, out, depth + 1);
        st.pop_back();
      }
      if (ret) st.pop_back();
      st.push_back(p);
      return;
    }
  }
}

void GrammarStacks::normalize(std::vector<Stack>& stacks) {
  std::sort(stacks.begin(), stacks.end());
  stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
}

std::vector<GrammarStacks::Stack> GrammarStacks::initial() const {
  std::vector<Stack> out;
  for (uint32_t start : g_->rules[g_->root]) {
    Stack st{start};
    expand(st, out, 0);
  }
  normalize(out);
  return out;
}

std::vector<GrammarStacks::Stack> GrammarStacks::advance(const std::vector<Stack>& stacks, uint8_t byte) const {
  std::vector<Stack> out;
  for (const Stack& s : stacks) {
    if (s.empty()) continue;
    const Grammar::Elem& e = g_->elems[s.back()];
    if (e.kind != Grammar::Elem::Kind::kBytes || !g_->sets[e.arg].test(byte)) continue;
    Stack next = s;
    next.back() += 1;
    expand(next, out, 0);
  }
  normalize(out);
  return out;
}

bool GrammarStacks::accepting(const std::vector<Stack>& stacks) {
  return std::any_of(stacks.begin(), stacks.end(), [](const Stack& s) { return s.empty(); });
}

bool GrammarStacks::matches(std::string_view text) const {
  auto st = initial();
  for (char c : text) {
    st = advance(st, static_cast<uint8_t>(c));
    if (st.empty()) return false;
  }
  return accepting(st);
}

}  // namespace zs::engine::structured
