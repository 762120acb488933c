#pragma once
// JSON Schema -> grammar. The subset is OpenAI's strict mode for structured outputs, plus a few
// conveniences; everything else is refused by name (never silently ignored), so the output
// always validates against the schema the client sent.
//
// Supported: `type` (object, array, string, number, integer, boolean, null, or a list of them),
// `properties`, `required` (absent properties are optional), `additionalProperties` (false,
// also when absent beside `properties`; true or a schema only on an object without
// `properties`, which is then a map of any keys), `items`, `minItems`, `maxItems`,
// `enum`, `const`, `anyOf`, `$ref` ("#", "#/$defs/...", "#/definitions/..."), `$defs`,
// `definitions`, string `minLength`/`maxLength`, string `format` (date, time, date-time,
// uuid), and the annotations title, description, default, examples, $schema, $id, $comment,
// deprecated, readOnly, writeOnly (ignored). A boolean schema `true` is any value.
// Refused with the keyword named: pattern, other formats, numeric bounds (minimum, maximum,
// exclusiveMinimum, exclusiveMaximum, multipleOf), oneOf, allOf, not, if/then/else,
// prefixItems, patternProperties, and any unknown keyword.
//
// Properties come out in the schema's order; whitespace between tokens is limited (none, one
// space, or one line break and up to 20 spaces or tabs) and numbers to 16 digits before and
// after the point, so a model cannot stall inside one value.
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"
#include "engine/structured/grammar.h"

namespace zs::engine::structured {

struct SchemaError {
  std::string keyword;  // the refused or malformed keyword ("pattern", "required", ...)
  std::string path;     // JSON pointer of the schema node ("#/properties/zip")
  std::string message;
  bool unsupported = false;  // valid JSON Schema that structured outputs do not implement
};

// Builds JSON grammars: rules for any JSON value and for values under schemas, inside one
// GrammarBuilder so that callers (tool calls) can wrap them in text of their own.
class JsonGrammarBuilder {
 public:
  JsonGrammarBuilder();
  GrammarBuilder& builder() { return b_; }

  Expr ws() const { return Expr::ref(ws_); }
  Expr any_value() const { return Expr::ref(value_); }
  Expr any_object() const { return Expr::ref(object_); }
  Expr string() const { return Expr::ref(string_); }
  // A value valid under `schema`; `root` resolves "$ref"s. On failure `error` says why.
  core::Result<Expr> schema(const nlohmann::ordered_json& schema, SchemaError* error = nullptr);

 private:
  struct Refused {
    SchemaError e;
  };
  Expr compile(const nlohmann::ordered_json& node, const std::string& path);
  Expr compile_object(const nlohmann::ordered_json& node, const std::string& path);
  Expr compile_array(const nlohmann::ordered_json& node, const std::string& path);
  Expr compile_string(const nlohmann::ordered_json& node, const std::string& path);
  Expr for_type(const std::string& type, const nlohmann::ordered_json& node, const std::string& path);
  Expr resolve_ref(const std::string& ref, const std::string& path);
  [[noreturn]] void refuse(const std::string& keyword, const std::string& path, const std::string& message);
  [[noreturn]] void refuse_unsupported(const std::string& keyword, const std::string& path, const std::string& message);

  GrammarBuilder b_;
  int ws_, value_, object_, array_, string_, number_, integer_;
  const nlohmann::ordered_json* root_ = nullptr;
  std::map<std::string, int> refs_;  // "$ref" target -> rule
  int counter_ = 0;
};

// The grammar of one JSON value under `schema` (the root of the output).
core::Result<Grammar> compile_json_schema(const nlohmann::ordered_json& schema, SchemaError* error = nullptr);
// The grammar of any JSON object (response_format json_object).
core::Result<Grammar> any_json_object_grammar();

// JSON text of a string: quotes and escapes as a JSON encoder writes them.
std::string json_quote(const std::string& s);

}  // namespace zs::engine::structured
