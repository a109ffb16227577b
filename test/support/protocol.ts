/**
 * Wire helpers for tests, Effect-free (the core's types and fast-check only): frames built from bytes
 * and strings, a hex view of a frame, a message constructor, and fast-check arbitraries of envelopes,
 * fields and payloads, and the samples on which an edition's serializers are compared with the
 * core's. Used by the core's codec tests (`test/core/protocol.test.ts`) and by both editions'
 * Protocol tests (which import it by relative path; it must not import `vitest`, each suite has its own).
 */
import fc from "fast-check"
import { Events } from "../../src/core/protocol/constants.js"
import { type Frame, type Message, ProtocolIssue } from "../../src/core/protocol/model.js"
import type * as Result from "../../src/core/result.js"

const encoder = new TextEncoder()

/** Concatenates byte arrays and UTF-8 strings into one frame. */
export const bytes = (...parts: ReadonlyArray<ReadonlyArray<number> | string>): Uint8Array => {
  const chunks = parts.map((part) => typeof part === "string" ? encoder.encode(part) : Uint8Array.from(part))
  const out = new Uint8Array(chunks.reduce((n, chunk) => n + chunk.length, 0))
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}

/** A text frame as it is; a binary frame as space-separated hex bytes (readable in a failed assertion). */
export const hex = (frame: Frame): string =>
  typeof frame === "string" ? frame : Array.from(frame, (b) => b.toString(16).padStart(2, "0")).join(" ")

/** A message from its five wire slots. */
export const msg = (
  joinRef: string | null,
  ref: string | null,
  topic: string,
  event: string,
  payload: unknown
): Message => ({ joinRef, ref, topic, event, payload })

/** The value of a core codec result; throws with the issue's message on a failure. */
export const right = <A>(result: Result.Result<A, ProtocolIssue>): A => {
  if (!result.ok) throw new Error(`expected ok, got ${result.error.message}`)
  return result.value
}

/** The issue of a failed core codec result; throws on a success or on an error that is no `ProtocolIssue`. */
export const left = <A>(result: Result.Result<A, ProtocolIssue>): ProtocolIssue => {
  if (result.ok) throw new Error(`expected an issue, got ${JSON.stringify(result.value)}`)
  if (!(result.error instanceof ProtocolIssue)) throw new Error(`expected a ProtocolIssue, got ${result.error}`)
  return result.error
}

/** The reason of a failed core codec result. */
export const reason = <A>(result: Result.Result<A, ProtocolIssue>): ProtocolIssue["reason"] => left(result).reason

/** Whether a codec returned a result (never a throw) whose error, if any, is a `ProtocolIssue`. */
export const isResult = (result: Result.Result<unknown, unknown>): boolean =>
  result.ok ? "value" in result : result.error instanceof ProtocolIssue

/** The arguments of `encodeUserBroadcast`, with `meta` when given. */
export const userBroadcast = (
  topic: string,
  event: string,
  payload: unknown,
  meta: Record<string, unknown> | undefined
) => meta === undefined ? { topic, event, payload } : { topic, event, payload, meta }

/** The UTF-8 length of a string. */
export const utf8Length = (s: string): number => encoder.encode(s).length

/** A string that fits a binary length byte and survives UTF-8 (no lone surrogates). */
export const field = (minLength = 0): fc.Arbitrary<string> =>
  fc.string({ unit: "grapheme", minLength, maxLength: 30 }).filter((s) => utf8Length(s) <= 255)

/** A join ref or ref: a field, or `null`. */
export const refArb: fc.Arbitrary<string | null> = fc.option(field(1), { nil: null })

/** An event name other than `broadcast` (which the v2 client encodes as binary). */
export const nonBroadcastEvent: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...Object.values(Events).filter((e) => e !== "broadcast")),
  field()
).filter((e) => e !== "broadcast")

/** JSON values, normalised through JSON (`-0` becomes `0`). */
export const jsonPayload: fc.Arbitrary<unknown> = fc.jsonValue().map((value) =>
  JSON.parse(JSON.stringify(value)) as unknown
)

/** Small byte arrays. */
export const bytesArb: fc.Arbitrary<Uint8Array> = fc.uint8Array({ maxLength: 64 })

/** A user broadcast payload: JSON other than `null`, or bytes. */
export const userPayload: fc.Arbitrary<unknown> = fc.oneof(jsonPayload.filter((v) => v !== null), bytesArb)

/** A broadcast push's `persist` metadata, or none. */
export const persistArb: fc.Arbitrary<boolean | { readonly ttl: number } | undefined> = fc.option(
  fc.oneof(fc.boolean(), fc.record({ ttl: fc.nat() })),
  { nil: undefined }
)

/** A user broadcast's `meta`, or none. */
export const metaArb: fc.Arbitrary<{ readonly id: string; readonly replayed?: boolean } | undefined> = fc.option(
  fc.record({ id: fc.uuid(), replayed: fc.boolean() }, { requiredKeys: ["id"] }),
  { nil: undefined }
)

/** A client broadcast push, with `persist` when given. */
export const broadcastPush = (
  joinRef: string | null,
  ref: string | null,
  topic: string,
  event: string,
  payload: unknown,
  persist: unknown
): Message =>
  msg(
    joinRef,
    ref,
    topic,
    "broadcast",
    persist === undefined ? { type: "broadcast", event, payload } : { type: "broadcast", event, payload, persist }
  )

/** Arrays and values shaped like, or almost like, an envelope (v2 tuples, v1 objects, anything). */
export const envelopeish: fc.Arbitrary<unknown> = (() => {
  const slot = fc.oneof(fc.constant(null), fc.string(), fc.integer(), fc.boolean(), fc.jsonValue({ maxDepth: 1 }))
  const stringy = fc.oneof({ weight: 4, arbitrary: fc.string() }, { weight: 1, arbitrary: slot })
  const nullableString = fc.oneof(fc.constant(null), stringy)
  return fc.oneof(
    fc.tuple(nullableString, nullableString, stringy, stringy, fc.jsonValue()),
    fc.array(slot, { maxLength: 7 }),
    fc.jsonValue(),
    fc.record(
      { topic: stringy, event: stringy, payload: fc.jsonValue(), ref: nullableString, join_ref: nullableString },
      { requiredKeys: [] }
    )
  )
})()

// -------------------------------------------------------------------------------------
// an edition's wrappers against the core
// -------------------------------------------------------------------------------------

/** What a codec returned, in one plain shape: an edition's `Either` / `Result` and the core's compare equal. */
export type Outcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly reason: string; readonly detail: string }

/** A core codec result as an {@link Outcome}. */
export const coreOutcome = (result: Result.Result<unknown, ProtocolIssue>): Outcome =>
  result.ok
    ? { ok: true, value: result.value }
    : { ok: false, reason: result.error.reason, detail: result.error.detail }

/**
 * Messages to encode and frames to decode on which the serializers of each side and version (and a
 * v2 serializer with other metadata keys) give different outcomes: a wrapper over the wrong core
 * serializer, or one that drops an option, gives other outcomes on them.
 */
export const samples: { readonly messages: ReadonlyArray<Message>; readonly frames: ReadonlyArray<Frame> } = {
  messages: [
    msg("6", "6", "realtime:room", "phx_join", { config: {} }),
    msg("1", "2", "realtime:t", "broadcast", { type: "broadcast", event: "e", payload: { z: 1 }, persist: true, a: 1 }),
    msg("5", "6", "t", "custom", new Uint8Array([1, 2])),
    msg(null, "1", "t", "e", { n: 1n }),
    msg("1", "2", "t".repeat(256), "broadcast", { type: "broadcast", event: "e", payload: {} })
  ],
  frames: [
    `[null,null,"t","e",{}]`,
    `{"topic":"t","event":"e","payload":{},"ref":"1","join_ref":"2"}`,
    ``,
    bytes([3, 0, 0, 1, 1, 0, 1], "t", "e", "{}"),
    bytes([4, 1, 1, 0, 1], "t", "e", "{}"),
    bytes([0, 1, 1, 1, 6], "5", "6", "t", "custom", [1, 2]),
    Uint8Array.of(5),
    new Uint8Array()
  ]
}

/** A serializer's outcomes on the {@link samples}: every encode, then every decode. */
export const outcomesOf = <R>(
  serializer: { readonly encode: (message: Message) => R; readonly decode: (frame: Frame) => R },
  toOutcome: (result: R) => Outcome
): ReadonlyArray<Outcome> => [
  ...samples.messages.map((message) => toOutcome(serializer.encode(message))),
  ...samples.frames.map((frame) => toOutcome(serializer.decode(frame)))
]

/** Arguments of the server-side binary encoders: one that encodes, one with a field over 255 bytes. */
export const encoderArgs = {
  phoenixPush: [
    { joinRef: "5", topic: "t", event: "evt", payload: new Uint8Array([1, 2]) },
    { joinRef: "5", topic: "t", event: "e".repeat(256), payload: new Uint8Array() }
  ],
  phoenixReply: [
    { joinRef: "5", ref: "12", topic: "t", status: "ok", response: new Uint8Array([7]) },
    { joinRef: "5", ref: "12", topic: "t", status: "s".repeat(256), response: new Uint8Array() }
  ],
  phoenixBroadcast: [
    { topic: "t", event: "ev", payload: new Uint8Array([1, 2, 3]) },
    { topic: "t".repeat(256), event: "e", payload: new Uint8Array() }
  ],
  userBroadcast: [
    { topic: "realtime:a", event: "e", payload: { a: [1] }, meta: { id: "m" } },
    { topic: "t", event: "e", payload: { n: 1n } }
  ]
} as const
