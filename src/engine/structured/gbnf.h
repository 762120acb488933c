#pragma once
// GBNF, the grammar notation of llama.cpp's server (`"grammar"` in a request), compiled to the
// same byte grammar as every other output constraint. Pure function, no state.
//
// Accepted notation:
//   name ::= alternatives          one rule per line; `root` is where output starts
//   a b                            sequence            a | b        alternatives
//   "text"                         literal             [a-z0-9_]    character class, [^...] negated
//   .                              any character       ( ... )      group (may span lines)
//   x* x+ x?  x{m} x{m,} x{m,n} x{,n}                  repetition (bounds up to 1000)
//   # ...                          comment to the end of the line
// Escapes in literals and classes: \n \r \t \\ \" \[ \] \- \^ \xHH \uHHHH \UHHHHHHHH.
// Characters are Unicode code points, matched as their UTF-8 bytes (surrogates never).
// A newline ends a rule except inside a group or right after `|`.
#include <string_view>

#include "core/status.h"
#include "engine/structured/grammar.h"

namespace zs::engine::structured {

// The grammar's rules compiled from `root`. Errors name the line and column and what is wrong
// (an unknown rule, a rule defined twice, no `root`, a bad escape or bound, unbalanced
// brackets, nesting deeper than 64 groups, a text over 256 KiB).
core::Result<Grammar> compile_gbnf(std::string_view text);

}  // namespace zs::engine::structured
