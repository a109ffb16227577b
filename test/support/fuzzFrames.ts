/**
 * Generators of hostile server frames for both editions' fuzz tests (`test/fuzz.test.ts`, and
 * `effect4/test/fuzz.test.ts` by relative path: this file is Effect-free, fast-check only), seeded
 * with fast-check: structured text frames to a channel (broadcast, presence, postgres changes,
 * system, replies) with payloads that are small, odd, nested up to 10,000 levels, huge numbers or
 * huge strings; the same with random edits; random text; binary frames of every kind with honest or
 * lying lengths, cut anywhere. Never `phx_close` / `phx_error` on the channel's join (a server may
 * end a join; that is no finding).
 */
import fc from "fast-check"

/** The topic the frames mostly go to. */
export const TOPIC = "realtime:room"
/** The deepest nesting generated. */
export const MAX_DEPTH = 10_000

// any code point, lone surrogates included (fast-check's "binary" unit builds a table of them all)
const anyChar = fc.integer({ min: 0, max: 0x10ffff }).map((c) => String.fromCodePoint(c))
const anyString = (maxLength: number) => fc.array(anyChar, { maxLength }).map((cs) => cs.join(""))

/** A JSON string literal. */
export const str = (s: string) => JSON.stringify(s)

const smallString = fc.oneof(
  fc.constantFrom("", "a", "cursor", "__proto__", "constructor", "toString", "r1", "r2", "phx_ref", "\u0000", "é"),
  fc.string({ maxLength: 12 }),
  anyString(12)
)

const hugeNumber = fc.oneof(
  fc.constantFrom(
    "1e400",
    "-1e400",
    "1E+308",
    "-0",
    "0.0000000000000000000000001",
    "9007199254740993",
    "-9223372036854775809"
  ),
  fc.tuple(fc.constantFrom("", "-"), fc.integer({ min: 16, max: 800 }), fc.integer({ min: 1, max: 9 })).map((
    [sign, length, digit]
  ) => sign + String(digit) + "7".repeat(length)),
  fc.tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: -99999, max: 99999 })).map(([m, e]) => `${m}.5e${e}`)
)

const hugeString = fc.tuple(
  fc.constantFrom("x", "é", "\\\"", "\\u0000", "{", "😀"),
  fc.integer({ min: 1_000, max: 16_000 })
)
  .map(([unit, n]) => `"${unit.repeat(n)}"`)

/** Containers nested `depth` levels (objects, arrays, or both), around `leaf`. */
const deep = fc.tuple(
  fc.oneof(fc.integer({ min: 2, max: 1_000 }), fc.integer({ min: 1_000, max: MAX_DEPTH })),
  fc.constantFrom("object", "array", "mixed"),
  fc.constantFrom("1", "\"x\"", "null", "{}", "[]", "{\"phx_ref\":\"r1\"}")
).map(([depth, shape, leaf]) => {
  if (shape === "object") return "{\"a\":".repeat(depth) + leaf + "}".repeat(depth)
  if (shape === "array") return "[".repeat(depth) + leaf + "]".repeat(depth)
  let open = ""
  let close = ""
  for (let i = 0; i < depth; i++) {
    if (i % 3 === 0) {
      open += "[1,"
      close = "]" + close
    } else {
      open += "{\"c\":"
      close = "}" + close
    }
  }
  return open + leaf + close
})

const scalarJson = fc.oneof(
  fc.constantFrom("null", "true", "false", "0", "1", "-1", "0.5", "\"\"", "\"t\"", "\"f\""),
  smallString.map(str),
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n))
)

/** Any JSON value as text: mostly small, sometimes deep, huge or odd. */
const value: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: scalarJson, weight: 30 },
  { arbitrary: fc.json({ maxDepth: 3 }), weight: 20 },
  { arbitrary: deep, weight: 1 },
  { arbitrary: hugeNumber, weight: 4 },
  { arbitrary: hugeString, weight: 1 },
  { arbitrary: fc.constantFrom("{\"x\":1,\"y\":2}", "{\"x\":\"1\"}", "{\"id\":1,\"title\":\"t\"}"), weight: 6 }
)

const meta = fc.oneof(
  fc.tuple(fc.constantFrom("r1", "r2", "r3"), value, fc.option(fc.constantFrom("r1", "r2", "r4"))).map((
    [ref, v, prev]
  ) => `{"phx_ref":${str(ref)}${prev === null ? "" : `,"phx_ref_prev":${str(prev)}`},"f":${v}}`),
  value
)

const presenceState = fc.array(
  fc.tuple(fc.constantFrom("a", "b", "__proto__", "constructor", ""), fc.array(meta, { maxLength: 3 })),
  { maxLength: 3 }
).map((entries) => `{${entries.map(([key, metas]) => `${str(key)}:{"metas":[${metas.join(",")}]}`).join(",")}}`)

const column = fc.tuple(
  fc.constantFrom("id", "title", "tags", "n", "j"),
  fc.constantFrom("int4", "int8", "_int4", "_text", "_jsonb", "jsonb", "numeric", "bool", "timestamp", "text", "")
).map(([name, type]) => `{"name":${str(name)},"type":${str(type)}}`)

const arrayLiteral = fc.tuple(fc.integer({ min: 1, max: MAX_DEPTH }), fc.constantFrom("1", "\\\"a\\\"", "NULL", "1,2"))
  .map(([depth, leaf]) => str("{".repeat(depth) + leaf.replace(/\\"/g, "\"") + "}".repeat(depth)))

const record = fc.array(
  fc.tuple(fc.constantFrom("id", "title", "tags", "n", "j"), fc.oneof(value, arrayLiteral)),
  { maxLength: 4 }
).map((fields) => `{${fields.map(([k, v]) => `${str(k)}:${v}`).join(",")}}`)

const change = fc.record({
  ids: fc.oneof(fc.constant("[7]"), value),
  type: fc.oneof(fc.constantFrom("INSERT", "UPDATE", "DELETE", "insert"), smallString).map(str),
  columns: fc.oneof({ arbitrary: fc.array(column, { maxLength: 5 }).map((c) => `[${c.join(",")}]`), weight: 5 }, value),
  record: fc.oneof({ arbitrary: record, weight: 5 }, value),
  old: fc.oneof(record, value),
  errors: fc.oneof(fc.constant("null"), value)
}).map((c) =>
  `{"ids":${c.ids},"data":{"schema":"public","table":"todos","commit_timestamp":"2024-01-01T00:00:00Z",` +
  `"type":${c.type},"columns":${c.columns},"record":${c.record},"old_record":${c.old},"errors":${c.errors}}}`
)

const broadcast = fc.tuple(fc.oneof(fc.constantFrom("cursor", "CURSOR", "other"), smallString), value, fc.option(value))
  .map(([event, payload, m]) =>
    `{"type":"broadcast","event":${str(event)},"payload":${payload}${m === null ? "" : `,"meta":${m}`}}`
  )

// never phx_close / phx_error on the channel's join: a server may end a join, that is no fuzz finding
const event = fc.oneof(
  { arbitrary: fc.constant(["broadcast", broadcast] as const), weight: 6 },
  { arbitrary: fc.constant(["presence_state", presenceState] as const), weight: 3 },
  {
    arbitrary: fc.constant(
      ["presence_diff", fc.tuple(presenceState, presenceState).map(([j, l]) => `{"joins":${j},"leaves":${l}}`)] as const
    ),
    weight: 4
  },
  { arbitrary: fc.constant(["postgres_changes", change] as const), weight: 5 },
  {
    arbitrary: fc.constant(
      [
        "system",
        fc.tuple(value, value).map(([s, m]) => `{"extension":"system","status":${s},"message":${m}}`)
      ] as const
    ),
    weight: 1
  },
  {
    arbitrary: fc.constant(["phx_reply", fc.tuple(value).map(([r]) => `{"status":"ok","response":${r}}`)] as const),
    weight: 1
  },
  { arbitrary: fc.constant(["presence", value] as const), weight: 1 }
).chain(([name, payload]) => payload.map((p) => [name, p] as const))

/** Structured text frames: mostly to the channel, with its join ref or none. */
const textFrame = (joinRef: string) =>
  fc.tuple(
    fc.oneof({ arbitrary: fc.constantFrom(joinRef, null), weight: 8 }, { arbitrary: smallString, weight: 1 }),
    fc.oneof({ arbitrary: fc.constant(null), weight: 8 }, { arbitrary: smallString, weight: 1 }),
    fc.oneof({ arbitrary: fc.constant(TOPIC), weight: 8 }, {
      arbitrary: fc.constantFrom("phoenix", "realtime:"),
      weight: 1
    }),
    event,
    fc.constantFrom("", "", "", ",1", ",{}")
  ).map(([jr, ref, topic, [name, payload], extra]) =>
    `[${JSON.stringify(jr)},${JSON.stringify(ref)},${str(topic)},${str(name)},${payload}${extra}]`
  )

/** A text frame with a few random edits (cuts, inserts, swaps, repeats). */
const mutated = (base: fc.Arbitrary<string>) =>
  fc.tuple(
    base,
    fc.array(
      fc.tuple(
        fc.nat(),
        fc.nat({ max: 8 }),
        fc.constantFrom("cut", "insert", "replace", "truncate", "repeat"),
        smallString
      ),
      { minLength: 1, maxLength: 3 }
    )
  ).map(([text, edits]) => {
    let s = text
    for (const [at, length, kind, insert] of edits) {
      const i = s.length === 0 ? 0 : at % s.length
      switch (kind) {
        case "cut":
          s = s.slice(0, i) + s.slice(i + length)
          break
        case "insert":
          s = s.slice(0, i) + insert + s.slice(i)
          break
        case "replace":
          s = s.slice(0, i) + insert + s.slice(i + insert.length)
          break
        case "truncate":
          s = s.slice(0, i)
          break
        case "repeat":
          s = s.slice(0, i + length) + s.slice(i, i + length) + s.slice(i + length)
          break
      }
    }
    return s
  })

const randomText = fc.oneof(
  fc.string({ maxLength: 200 }),
  anyString(200),
  fc.string({
    unit: fc.constantFrom("[", "]", "{", "}", "\"", ",", ":", "1", "e", "-", "n", "u", "l", " "),
    maxLength: 200
  })
)

const encoder = new TextEncoder()

/** Binary frames of every kind (and unknown ones), with honest or lying lengths, cut anywhere. */
const binaryFrame = (joinRef: string) => {
  const field = fc.oneof(
    {
      arbitrary: fc.constantFrom(TOPIC, joinRef, "cursor", "broadcast", "presence_diff", "ok", "error", ""),
      weight: 4
    },
    { arbitrary: smallString, weight: 1 }
  ).map((s) => encoder.encode(s))
  const garbage = fc.uint8Array({ maxLength: 40 })
  const body = fc.oneof(
    value.map((v) => encoder.encode(v)),
    garbage,
    fc.constant(new Uint8Array([0xff, 0xfe, 0x80]))
  )
  return fc.tuple(
    fc.oneof({ arbitrary: fc.constantFrom(0, 1, 2, 3, 4), weight: 9 }, {
      arbitrary: fc.integer({ min: 0, max: 255 }),
      weight: 1
    }),
    fc.array(field, { minLength: 4, maxLength: 4 }),
    fc.array(fc.option(fc.integer({ min: 0, max: 255 }), { freq: 3 }), { minLength: 4, maxLength: 4 }),
    fc.integer({ min: 0, max: 3 }),
    body,
    fc.option(fc.nat(), { freq: 4 })
  ).map(([kind, fields, lies, encoding, payload, cut]) => {
    // the header's length bytes: the fields' real lengths, or lies
    const lengths = fields.map((f, i) => lies[i] ?? f.length)
    const header = kind === 2 ? [kind, lengths[0]!, lengths[1]!] : kind === 4 || kind === 3
      ? [kind, lengths[0]!, lengths[1]!, lengths[2]!, encoding]
      : kind === 0
      ? [kind, lengths[0]!, lengths[1]!, lengths[2]!]
      : [kind, lengths[0]!, lengths[1]!, lengths[2]!, lengths[3]!]
    const used = header.length - 1 - (kind === 3 || kind === 4 ? 1 : 0)
    const parts = [new Uint8Array(header), ...fields.slice(0, used), payload]
    let size = 0
    for (const p of parts) size += p.length
    const out = new Uint8Array(size)
    let at = 0
    for (const p of parts) {
      out.set(p, at)
      at += p.length
    }
    return cut === null ? out : out.slice(0, cut % (size + 1))
  })
}

/** A frame: structured, mutated, random text or binary. */
export const frame = (joinRef: string): fc.Arbitrary<string | Uint8Array> =>
  fc.oneof(
    { arbitrary: textFrame(joinRef), weight: 10 },
    { arbitrary: mutated(textFrame(joinRef)), weight: 5 },
    { arbitrary: randomText, weight: 2 },
    { arbitrary: binaryFrame(joinRef), weight: 5 }
  )
