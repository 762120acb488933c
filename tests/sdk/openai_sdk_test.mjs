// zeroserve against the official OpenAI SDK (npm `openai`, pinned in package.json): structured
// outputs, tool calls, logprobs and n through `zeroserve serve` with the real stories260K model
// (it never writes JSON by itself: JSON is reachable only through the constraint) and
// TinyStories-656K (no piece can start a JSON object: a clear 400, not a hang).
//
//   node openai_sdk_test.mjs <zeroserve binary> <shared dir>
// Exits 0 when every check passes; prints each failure and exits 1 otherwise.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";

const [zeroserve, shared] = process.argv.slice(2);
if (!zeroserve || !shared) {
  console.error("usage: node openai_sdk_test.mjs <zeroserve> <shared dir>");
  process.exit(2);
}

// An independent checker for the JSON Schema subset the tests use.
function validate(schema, value, path = "$") {
  const fail = (why) => [`${path}: ${why}`];
  if (schema.enum) return schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value)) ? [] : fail("not in enum");
  switch (schema.type) {
    case "object": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return fail("not an object");
      const errors = [];
      for (const k of schema.required ?? []) if (!(k in value)) errors.push(`${path}.${k}: missing`);
      for (const [k, v] of Object.entries(value)) {
        if (!(k in (schema.properties ?? {}))) {
          if (schema.additionalProperties === false) errors.push(`${path}.${k}: not allowed`);
          continue;
        }
        errors.push(...validate(schema.properties[k], v, `${path}.${k}`));
      }
      return errors;
    }
    case "array": {
      if (!Array.isArray(value)) return fail("not an array");
      if (schema.minItems !== undefined && value.length < schema.minItems) return fail("too few items");
      if (schema.maxItems !== undefined && value.length > schema.maxItems) return fail("too many items");
      return value.flatMap((v, i) => validate(schema.items, v, `${path}[${i}]`));
    }
    case "string":
      if (typeof value !== "string") return fail("not a string");
      if (schema.maxLength !== undefined && [...value].length > schema.maxLength) return fail("too long");
      return [];
    case "integer":
      return Number.isInteger(value) ? [] : fail("not an integer");
    case "number":
      return typeof value === "number" ? [] : fail("not a number");
    case "boolean":
      return typeof value === "boolean" ? [] : fail("not a boolean");
    default:
      return fail(`unknown type ${schema.type}`);
  }
}

// True when `s` is a JSON object or the beginning of one (what a constrained answer cut by
// max_tokens must be).
function isJsonObjectPrefix(s) {
  let i = 0;
  const EOF = new Error("eof");
  const ws = () => {
    while (i < s.length && " \t\n\r".includes(s[i])) i++;
    if (i >= s.length) throw EOF;
  };
  const expect = (c) => {
    ws();
    if (s[i] !== c) throw new Error(`expected ${c} at ${i}`);
    i++;
  };
  const str = () => {
    expect('"');
    for (;;) {
      if (i >= s.length) throw EOF;
      const c = s[i++];
      if (c === '"') return;
      if (c < " ") throw new Error("control character in a string");
      if (c !== "\\") continue;
      if (i >= s.length) throw EOF;
      const e = s[i++];
      if (!'"\\/bfnrtu'.includes(e)) throw new Error("bad escape");
      for (let k = 0; e === "u" && k < 4; k++) {
        if (i >= s.length) throw EOF;
        if (!/[0-9a-fA-F]/.test(s[i++])) throw new Error("bad \\u escape");
      }
    }
  };
  const literal = (w) => {
    for (const ch of w) {
      if (i >= s.length) throw EOF;
      if (s[i++] !== ch) throw new Error("bad literal");
    }
  };
  const number = () => {
    const m = /^-?(0|[1-9][0-9]*)?(\.[0-9]*)?([eE][+-]?[0-9]*)?/.exec(s.slice(i));
    if (!m[0]) throw new Error(`bad value at ${i}`);
    i += m[0].length;
    if (i >= s.length) throw EOF;
  };
  const value = () => {
    ws();
    const c = s[i];
    if (c === "{") object();
    else if (c === "[") array();
    else if (c === '"') str();
    else if (c === "t") literal("true");
    else if (c === "f") literal("false");
    else if (c === "n") literal("null");
    else number();
  };
  const object = () => {
    expect("{");
    ws();
    if (s[i] === "}") return void i++;
    for (;;) {
      str();
      expect(":");
      value();
      ws();
      if (s[i] !== ",") return expect("}");
      i++;
    }
  };
  const array = () => {
    expect("[");
    ws();
    if (s[i] === "]") return void i++;
    for (;;) {
      value();
      ws();
      if (s[i] !== ",") return expect("]");
      i++;
    }
  };
  try {
    ws();
    if (s[i] !== "{") return false;
    object();
    return /^\s*$/.test(s.slice(i));
  } catch (e) {
    return e === EOF;
  }
}

const failures = [];
function check(name, ok, detail = "") {
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${ok || !detail ? "" : ": " + detail}`);
  if (!ok) failures.push(name);
}

// A nested schema whose every output is finite (bounded strings and arrays).
const person = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 12 },
    age: { type: "integer" },
    pet: { type: "string", enum: ["cat", "dog", "fish"] },
    address: {
      type: "object",
      properties: { city: { type: "string", maxLength: 10 }, zip: { type: "string", maxLength: 5 } },
      required: ["city", "zip"],
      additionalProperties: false,
    },
    tags: { type: "array", items: { type: "string", maxLength: 6 }, maxItems: 3 },
    happy: { type: "boolean" },
  },
  required: ["name", "age", "pet", "address", "tags", "happy"],
  additionalProperties: false,
};
const weather = {
  type: "object",
  properties: { city: { type: "string", maxLength: 10 }, unit: { type: "string", enum: ["c", "f"] } },
  required: ["city", "unit"],
  additionalProperties: false,
};
const tools = [{ type: "function", function: { name: "get_weather", description: "Weather in a city", parameters: weather } }];

const dir = mkdtempSync(join(tmpdir(), "zs-sdk-"));
const config = join(dir, "zeroserve.yaml");
writeFileSync(
  config,
  "deployments:\n" +
    `  - name: story\n    model: ${shared}/golden/models/stories260K.gguf\n    slots: 4\n    ctx: 1024\n    threads: 1\n` +
    `  - name: tiny\n    model: ${shared}/golden/models/TinyStories-656K-Q8_0.gguf\n    slots: 1\n    ctx: 512\n    threads: 1\n`,
);
const serve = spawn(zeroserve, ["serve", "--config", config, "--listen", "127.0.0.1:0"], {
  env: { ...process.env, XDG_STATE_HOME: join(dir, "state"), XDG_CACHE_HOME: join(dir, "cache") },
  stdio: ["ignore", "pipe", "inherit"],
});
const address = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error("serve did not become ready in 60 s")), 60000);
  createInterface({ input: serve.stdout }).on("line", (line) => {
    if (line.startsWith("ready ")) {
      clearTimeout(timer);
      resolve(line.slice(6).trim());
    }
  });
  serve.on("exit", (code) => reject(new Error(`serve exited with ${code}`)));
});
const client = new OpenAI({ baseURL: `http://${address}/v1`, apiKey: "unused", maxRetries: 0, timeout: 120000 });
const ask = [{ role: "user", content: "Tell me about a girl and her pet." }];

try {
  // json_schema, strict: the output parses and validates, for several seeds.
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.create({
      model: "story", messages: ask, temperature: 0.9, seed, max_tokens: 400,
      response_format: { type: "json_schema", json_schema: { name: "person", schema: person, strict: true } },
    });
    const text = r.choices[0].message.content;
    let value, errors;
    try {
      value = JSON.parse(text);
      errors = validate(person, value);
    } catch (e) {
      errors = [`does not parse: ${e.message}`];
    }
    check(`json_schema seed ${seed} validates`, r.choices[0].finish_reason === "stop" && errors.length === 0,
          `${r.choices[0].finish_reason}: ${errors.join("; ")} in ${text}`);
  }

  // json_object: any object. This model writes stories inside the strings and rarely closes
  // the object before max_tokens; what it wrote must then be the beginning of one.
  check("the prefix checker refuses what is not JSON", isJsonObjectPrefix('{"a": [1, tr') &&
        !isJsonObjectPrefix('{"a" 1') && !isJsonObjectPrefix("hello") && !isJsonObjectPrefix('{"a": 1} x'));
  for (const seed of [4, 5, 6]) {
    const r = await client.chat.completions.create({
      model: "story", messages: ask, temperature: 0.7, seed, max_tokens: 200, response_format: { type: "json_object" },
    });
    const c = r.choices[0];
    let ok = false;
    if (c.finish_reason === "stop") {
      try {
        const v = JSON.parse(c.message.content);
        ok = typeof v === "object" && v !== null && !Array.isArray(v);
      } catch {}
    } else {
      ok = c.finish_reason === "length" && isJsonObjectPrefix(c.message.content);
    }
    check(`json_object seed ${seed}: an object (or its beginning at max_tokens)`, ok, c.message.content);
  }

  // Streaming json_schema: the deltas join into valid JSON.
  {
    const stream = await client.chat.completions.create({
      model: "story", messages: ask, temperature: 0.9, seed: 7, max_tokens: 400, stream: true,
      response_format: { type: "json_schema", json_schema: { name: "person", schema: person, strict: true } },
    });
    let text = "", finish = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    let errors;
    try {
      errors = validate(person, JSON.parse(text));
    } catch (e) {
      errors = [e.message];
    }
    check("streamed json_schema validates", finish === "stop" && errors.length === 0, `${finish} ${errors} ${text}`);
  }

  // A forced tool call: its arguments parse and validate against the parameters.
  {
    const r = await client.chat.completions.create({
      model: "story", messages: [{ role: "user", content: "What is the weather in Paris?" }], temperature: 0.8, seed: 8,
      max_tokens: 200, tools, tool_choice: { type: "function", function: { name: "get_weather" } },
    });
    const c = r.choices[0];
    const call = c.message.tool_calls?.[0];
    let errors = ["no tool call"];
    if (call) {
      try {
        errors = validate(weather, JSON.parse(call.function.arguments));
      } catch (e) {
        errors = [e.message];
      }
    }
    check("forced tool call", c.finish_reason === "tool_calls" && call?.type === "function" &&
          call?.function?.name === "get_weather" && typeof call?.id === "string" && errors.length === 0,
          JSON.stringify(c));

    // The same, streamed: tool_calls deltas.
    const stream = await client.chat.completions.create({
      model: "story", messages: [{ role: "user", content: "What is the weather in Paris?" }], temperature: 0.8, seed: 8,
      max_tokens: 200, tools, tool_choice: { type: "function", function: { name: "get_weather" } }, stream: true,
    });
    let name = "", args = "", finish = null;
    for await (const chunk of stream) {
      for (const d of chunk.choices[0]?.delta?.tool_calls ?? []) {
        name += d.function?.name ?? "";
        args += d.function?.arguments ?? "";
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    let streamed = ["no arguments"];
    try {
      streamed = validate(weather, JSON.parse(args));
    } catch (e) {
      streamed = [e.message];
    }
    check("streamed tool call", finish === "tool_calls" && name === "get_weather" && streamed.length === 0,
          `${finish} ${name} ${args}`);
  }

  // auto: a model that answers in text gets a text answer.
  {
    const r = await client.chat.completions.create({
      model: "story", messages: ask, temperature: 0, max_tokens: 24, tools, tool_choice: "auto",
    });
    const c = r.choices[0];
    check("auto tools with a text answer", (c.finish_reason === "stop" || c.finish_reason === "length") &&
          typeof c.message.content === "string" && c.message.content.length > 0 && !c.message.tool_calls?.length,
          JSON.stringify(c));
  }

  // logprobs at temperature 0: every chosen token is the most likely one.
  {
    const r = await client.chat.completions.create({
      model: "story", messages: ask, temperature: 0, max_tokens: 12, logprobs: true, top_logprobs: 5,
    });
    const content = r.choices[0].logprobs?.content ?? [];
    const greedy = content.length > 0 && content.every((t) =>
      t.top_logprobs.length === 5 && t.top_logprobs[0].token === t.token &&
      Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-5 &&
      t.top_logprobs.every((x, i) => i === 0 || x.logprob <= t.top_logprobs[i - 1].logprob) &&
      t.top_logprobs.reduce((s, x) => s + Math.exp(x.logprob), 0) <= 1 + 1e-4 && Array.isArray(t.bytes));
    check("logprobs: greedy tokens on top, a distribution", greedy, JSON.stringify(content.slice(0, 2)));
  }

  // n: 3 choices from one prompt.
  {
    const r = await client.chat.completions.create({ model: "story", messages: ask, temperature: 1, seed: 9, max_tokens: 8, n: 3 });
    check("n: 3 gives three choices", r.choices.length === 3 && r.choices.map((c) => c.index).join() === "0,1,2");
  }

  // A model that cannot start a JSON object: a clear 400 naming response_format, no hang.
  {
    let status = 0, message = "";
    try {
      await client.chat.completions.create({ model: "tiny", messages: ask, max_tokens: 20, response_format: { type: "json_object" } });
    } catch (e) {
      status = e.status;
      message = e.message;
    }
    check("an unsatisfiable format is a 400", status === 400 && /response_format/.test(message), `${status} ${message}`);
  }

  // An unsupported keyword: a 400 naming it.
  {
    let status = 0, message = "";
    try {
      await client.chat.completions.create({
        model: "story", messages: ask, max_tokens: 20,
        response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "string", pattern: "^a+$" } } },
      });
    } catch (e) {
      status = e.status;
      message = e.message;
    }
    check("an unsupported keyword is a 400 naming it", status === 400 && /pattern/.test(message), `${status} ${message}`);
  }
} catch (e) {
  check("no unexpected error", false, e.stack);
} finally {
  serve.kill("SIGTERM");
  await new Promise((r) => serve.on("exit", r));
  rmSync(dir, { recursive: true, force: true });
}
console.log(failures.length ? `${failures.length} failed` : "all passed");
process.exit(failures.length ? 1 : 0);
