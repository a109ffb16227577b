/**
 * The Phoenix / Supabase Realtime wire protocol: the message model (as `Schema`s) and the pure,
 * synchronous serializers for vsn 1.0.0 (JSON objects) and vsn 2.0.0 (JSON arrays plus the binary
 * kinds 0–4), for both sides of the wire.
 *
 * The serializers never throw: every failure is a `ProtocolError` in an `Either.left`. The decode path
 * is hand-written (one `JSON.parse`, shape checks, byte reads); the `Schema`s below are the documented
 * model, and a property test proves that `V2TextFrame` and the hand-written decoder agree.
 *
 * Binary payloads handed out by the decoders (`Uint8Array`) are always fresh copies: they never alias
 * the frame, so the transport may reuse its buffers.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { ProtocolError } from "./RealtimeError.js"

// -------------------------------------------------------------------------------------
// models
// -------------------------------------------------------------------------------------

/**
 * The serializer version, sent as the `vsn` query parameter.
 *
 * @since 0.1.0
 * @category models
 */
export type Vsn = "1.0.0" | "2.0.0"

/**
 * A WebSocket frame: text or binary (an `ArrayBuffer` is normalised to a `Uint8Array` by the transport).
 *
 * @since 0.1.0
 * @category models
 */
export type Frame = string | Uint8Array

/**
 * The Phoenix envelope, decoded. Wire slots are `[join_ref, ref, topic, event, payload]`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Message {
  readonly joinRef: string | null
  readonly ref: string | null
  readonly topic: string
  readonly event: string
  readonly payload: unknown
}

/**
 * The client side of the wire: encodes what a client sends, decodes what a server sends.
 *
 * @since 0.1.0
 * @category models
 */
export interface Serializer {
  readonly vsn: Vsn
  readonly encode: (message: Message) => Either.Either<Frame, ProtocolError>
  readonly decode: (frame: Frame) => Either.Either<Message, ProtocolError>
}

/**
 * The server side of the wire: decodes what a client sends, encodes what a server sends. Used by the
 * in-process test server and to prove interoperability.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerSerializer {
  readonly vsn: Vsn
  readonly decode: (frame: Frame) => Either.Either<Message, ProtocolError>
  readonly encode: (message: Message) => Either.Either<Frame, ProtocolError>
}

// -------------------------------------------------------------------------------------
// constants
// -------------------------------------------------------------------------------------

/**
 * The topic of socket-level messages (heartbeats).
 *
 * @since 0.1.0
 * @category constants
 */
export const PHOENIX_TOPIC = "phoenix"

/**
 * Event names of the protocol.
 *
 * @since 0.1.0
 * @category constants
 */
export const Events = {
  join: "phx_join",
  reply: "phx_reply",
  leave: "phx_leave",
  close: "phx_close",
  error: "phx_error",
  heartbeat: "heartbeat",
  broadcast: "broadcast",
  presence: "presence",
  presenceState: "presence_state",
  presenceDiff: "presence_diff",
  postgresChanges: "postgres_changes",
  system: "system",
  accessToken: "access_token"
} as const

/**
 * The kinds (first byte) of vsn 2.0.0 binary frames. `push`, `reply` and `broadcast` are Phoenix's,
 * `userBroadcastPush` (client → server) and `userBroadcast` (server → client) are Supabase's.
 *
 * @since 0.1.0
 * @category constants
 */
export const BinaryKind = {
  push: 0,
  reply: 1,
  broadcast: 2,
  userBroadcastPush: 3,
  userBroadcast: 4
} as const

/**
 * The payload encoding byte of binary kinds 3 and 4.
 *
 * @since 0.1.0
 * @category constants
 */
export const PayloadEncoding = {
  binary: 0,
  json: 1
} as const

/**
 * The largest UTF-8 byte length of a string field (ref, topic, event, metadata) in a binary frame.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_FIELD_LENGTH = 255

// -------------------------------------------------------------------------------------
// schemas: envelope
// -------------------------------------------------------------------------------------

/**
 * The decoded envelope as a `Schema` (the model of `Message`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Envelope = Schema.Struct({
  joinRef: Schema.NullOr(Schema.String),
  ref: Schema.NullOr(Schema.String),
  topic: Schema.String,
  event: Schema.String,
  payload: Schema.Unknown
})

/**
 * A vsn 2.0.0 text frame after `JSON.parse`: `[join_ref, ref, topic, event, payload, ...ignored]`,
 * transformed to and from a `Message`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const V2TextFrame = Schema.transform(
  // elements after the fifth are ignored, as Phoenix's V2 serializer does
  Schema.Tuple(
    [Schema.NullOr(Schema.String), Schema.NullOr(Schema.String), Schema.String, Schema.String, Schema.Unknown],
    Schema.Unknown
  ),
  Envelope,
  {
    strict: true,
    decode: ([joinRef, ref, topic, event, payload]) => ({ joinRef, ref, topic, event, payload }),
    encode: (message) => [message.joinRef, message.ref, message.topic, message.event, message.payload] as const
  }
)

/**
 * A vsn 1.0.0 text frame after `JSON.parse`: `{topic, event, payload, ref, join_ref?}`. A missing
 * `ref` or `join_ref` decodes to `null`; `join_ref` is omitted on encode when `null`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const V1TextFrame = Schema.transform(
  Schema.Struct({
    topic: Schema.String,
    event: Schema.String,
    payload: Schema.Unknown,
    ref: Schema.optional(Schema.NullOr(Schema.String)),
    join_ref: Schema.optional(Schema.NullOr(Schema.String))
  }).annotations({ parseOptions: { exact: true } }), // `payload` must be present
  Envelope,
  {
    strict: true,
    decode: (frame) => ({
      joinRef: frame.join_ref ?? null,
      ref: frame.ref ?? null,
      topic: frame.topic,
      event: frame.event,
      payload: frame.payload
    }),
    encode: (message) =>
      message.joinRef === null
        ? { topic: message.topic, event: message.event, payload: message.payload, ref: message.ref }
        : {
          topic: message.topic,
          event: message.event,
          payload: message.payload,
          ref: message.ref,
          join_ref: message.joinRef
        }
  }
)

// -------------------------------------------------------------------------------------
// schemas: payloads
// -------------------------------------------------------------------------------------

/**
 * Payload of `phx_reply`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ReplyPayload = Schema.Struct({
  status: Schema.Literal("ok", "error"),
  response: Schema.Unknown
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface ReplyPayload extends Schema.Schema.Type<typeof ReplyPayload> {}

/**
 * `config.broadcast.replay` of a join: replay stored messages since `since` (ms since epoch).
 *
 * @since 0.1.0
 * @category schemas
 */
export const BroadcastReplayConfig = Schema.Struct({
  since: Schema.Number,
  limit: Schema.optional(Schema.Number)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface BroadcastReplayConfig extends Schema.Schema.Type<typeof BroadcastReplayConfig> {}

/**
 * `config.broadcast` of a join.
 *
 * @since 0.1.0
 * @category schemas
 */
export const BroadcastConfig = Schema.Struct({
  self: Schema.optional(Schema.Boolean),
  ack: Schema.optional(Schema.Boolean),
  replay: Schema.optional(BroadcastReplayConfig),
  replication_ready: Schema.optional(Schema.Boolean)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface BroadcastConfig extends Schema.Schema.Type<typeof BroadcastConfig> {}

/**
 * `config.presence` of a join.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PresenceConfig = Schema.Struct({
  key: Schema.optional(Schema.String),
  enabled: Schema.optional(Schema.Boolean)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface PresenceConfig extends Schema.Schema.Type<typeof PresenceConfig> {}

/**
 * A Postgres change event name; `*` matches all.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PostgresChangeEvent = Schema.Literal("*", "INSERT", "UPDATE", "DELETE")

/**
 * @since 0.1.0
 * @category schemas
 */
export type PostgresChangeEvent = Schema.Schema.Type<typeof PostgresChangeEvent>

/**
 * One entry of `config.postgres_changes` of a join (in registration order).
 *
 * @since 0.1.0
 * @category schemas
 */
export const PostgresChangesFilter = Schema.Struct({
  event: PostgresChangeEvent,
  schema: Schema.String,
  table: Schema.optional(Schema.String),
  filter: Schema.optional(Schema.String),
  select: Schema.optional(Schema.Array(Schema.String))
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface PostgresChangesFilter extends Schema.Schema.Type<typeof PostgresChangesFilter> {}

/**
 * `config` of a join.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JoinConfig = Schema.Struct({
  broadcast: Schema.optional(BroadcastConfig),
  presence: Schema.optional(PresenceConfig),
  postgres_changes: Schema.optional(Schema.Array(PostgresChangesFilter)),
  private: Schema.optional(Schema.Boolean)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface JoinConfig extends Schema.Schema.Type<typeof JoinConfig> {}

/**
 * Payload of `phx_join`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JoinPayload = Schema.Struct({
  config: JoinConfig,
  access_token: Schema.optional(Schema.String),
  version: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface JoinPayload extends Schema.Schema.Type<typeof JoinPayload> {}

/**
 * A Postgres changes binding as echoed by the server in an ok join reply, with its server `id`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PostgresChangesBinding = Schema.Struct({
  id: Schema.Number,
  event: PostgresChangeEvent,
  schema: Schema.String,
  table: Schema.optional(Schema.String),
  filter: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface PostgresChangesBinding extends Schema.Schema.Type<typeof PostgresChangesBinding> {}

/**
 * `response` of an ok join reply (the key is absent on older servers).
 *
 * @since 0.1.0
 * @category schemas
 */
export const JoinReplyResponse = Schema.Struct({
  postgres_changes: Schema.optional(Schema.Array(PostgresChangesBinding))
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface JoinReplyResponse extends Schema.Schema.Type<typeof JoinReplyResponse> {}

/**
 * `meta` of a received broadcast: `id` for stored / database messages, `replayed` for replays.
 *
 * @since 0.1.0
 * @category schemas
 */
export const BroadcastMeta = Schema.Struct({
  replayed: Schema.optional(Schema.Boolean),
  id: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface BroadcastMeta extends Schema.Schema.Type<typeof BroadcastMeta> {}

/**
 * Payload of `broadcast` (both directions; from binary frames `payload` is a `Uint8Array` for
 * binary user payloads).
 *
 * @since 0.1.0
 * @category schemas
 */
export const BroadcastPayload = Schema.Struct({
  type: Schema.Literal("broadcast"),
  event: Schema.String,
  payload: Schema.Unknown,
  meta: Schema.optional(BroadcastMeta)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface BroadcastPayload extends Schema.Schema.Type<typeof BroadcastPayload> {}

/**
 * One presence of a key: the server's `phx_ref` (and `phx_ref_prev` after an update) plus the
 * tracked fields, which are kept.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PresenceMeta = Schema.Struct(
  {
    phx_ref: Schema.String,
    phx_ref_prev: Schema.optional(Schema.String)
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)

/**
 * @since 0.1.0
 * @category schemas
 */
export type PresenceMeta = Schema.Schema.Type<typeof PresenceMeta>

/**
 * The presences of one key.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PresenceEntry = Schema.Struct({
  metas: Schema.Array(PresenceMeta)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface PresenceEntry extends Schema.Schema.Type<typeof PresenceEntry> {}

/**
 * Payload of `presence_state`: `{ [key]: { metas } }`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PresenceState = Schema.Record({ key: Schema.String, value: PresenceEntry })

/**
 * @since 0.1.0
 * @category schemas
 */
export type PresenceState = Schema.Schema.Type<typeof PresenceState>

/**
 * Payload of `presence_diff`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PresenceDiff = Schema.Struct({
  joins: PresenceState,
  leaves: PresenceState
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface PresenceDiff extends Schema.Schema.Type<typeof PresenceDiff> {}

/**
 * Payload of a client `presence` push: track (with the fields to track) or untrack.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PresencePushPayload = Schema.Union(
  Schema.Struct({
    type: Schema.Literal("presence"),
    event: Schema.Literal("track"),
    payload: Schema.Record({ key: Schema.String, value: Schema.Unknown })
  }),
  Schema.Struct({
    type: Schema.Literal("presence"),
    event: Schema.Literal("untrack")
  })
)

/**
 * @since 0.1.0
 * @category schemas
 */
export type PresencePushPayload = Schema.Schema.Type<typeof PresencePushPayload>

/**
 * A column of a Postgres change.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PostgresColumn = Schema.Struct({
  name: Schema.String,
  type: Schema.String
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface PostgresColumn extends Schema.Schema.Type<typeof PostgresColumn> {}

/**
 * Payload of `postgres_changes`: the ids of the matching bindings and the change.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PostgresChangesPayload = Schema.Struct({
  ids: Schema.Array(Schema.Number),
  data: Schema.Struct({
    schema: Schema.String,
    table: Schema.String,
    commit_timestamp: Schema.String,
    type: Schema.Literal("INSERT", "UPDATE", "DELETE"),
    columns: Schema.Array(PostgresColumn),
    record: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
    old_record: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
    errors: Schema.NullOr(Schema.Array(Schema.String))
  })
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface PostgresChangesPayload extends Schema.Schema.Type<typeof PostgresChangesPayload> {}

/**
 * Payload of `system`. `channel` (the subtopic) is absent on tenant-wide notices.
 *
 * @since 0.1.0
 * @category schemas
 */
export const SystemPayload = Schema.Struct({
  extension: Schema.String,
  status: Schema.Literal("ok", "error"),
  message: Schema.String,
  channel: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface SystemPayload extends Schema.Schema.Type<typeof SystemPayload> {}

/**
 * Payload of the client's `access_token` push.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AccessTokenPayload = Schema.Struct({
  access_token: Schema.NullOr(Schema.String)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface AccessTokenPayload extends Schema.Schema.Type<typeof AccessTokenPayload> {}

/**
 * Payload of `heartbeat` (always `{}`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const HeartbeatPayload = Schema.Struct({})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface HeartbeatPayload extends Schema.Schema.Type<typeof HeartbeatPayload> {}

// -------------------------------------------------------------------------------------
// internal: errors, bytes, strings
// -------------------------------------------------------------------------------------

type Reason = ProtocolError["reason"]

const error = (reason: Reason, detail: string): ProtocolError => new ProtocolError({ reason, detail }, true)

const fail = (reason: Reason, detail: string): Either.Either<never, ProtocolError> =>
  Either.left(new ProtocolError({ reason, detail }, true))

const describeCause = (cause: unknown): string => cause instanceof Error ? cause.message : String(cause)

const textEncoder = new TextEncoder()
// `fatal`: invalid UTF-8 is an error, not U+FFFD; `ignoreBOM`: a leading U+FEFF is kept, not stripped
const textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/** A view (not a copy) of `bytes[start, end)`, without the `Buffer` species. */
const view = (bytes: Uint8Array, start: number, end: number): Uint8Array =>
  new Uint8Array(bytes.buffer, bytes.byteOffset + start, end - start)

/** A fresh copy of `bytes[start, end)`: never aliases the frame (the socket may reuse it). */
const copy = (bytes: Uint8Array, start: number, end: number): Uint8Array => {
  const out = new Uint8Array(end - start)
  out.set(view(bytes, start, end))
  return out
}

const decodeUtf8 = (bytes: Uint8Array, start: number, end: number): string | undefined => {
  try {
    return textDecoder.decode(view(bytes, start, end))
  } catch {
    return undefined
  }
}

/**
 * `bytes[start, end)` as a string, or `undefined` when it is not valid UTF-8. Short ASCII strings are
 * built by hand (a `TextDecoder` call has a fixed cost of about 150 ns).
 */
const readString = (bytes: Uint8Array, start: number, end: number): string | undefined => {
  if (end - start > 12) return decodeUtf8(bytes, start, end)
  let s = ""
  for (let i = start; i < end; i++) {
    const b = bytes[i]!
    if (b > 0x7f) return decodeUtf8(bytes, start, end)
    s += String.fromCharCode(b)
  }
  return s
}

/**
 * The string fields of a binary frame, `bytes[start, end)`, decoded in one go when they are pure ASCII
 * (then byte offsets are string offsets and each field is a slice), else `undefined` (and each field is
 * decoded on its own by `readField`, which also reports which one is not valid UTF-8).
 */
const readRegion = (bytes: Uint8Array, start: number, end: number): string | undefined => {
  const s = readString(bytes, start, end)
  return s !== undefined && s.length === end - start ? s : undefined
}

const readField = (
  bytes: Uint8Array,
  region: string | undefined,
  base: number,
  start: number,
  end: number
): string | undefined => region !== undefined ? region.slice(start - base, end - base) : readString(bytes, start, end)

const parseJson = (text: string, what: string): unknown => {
  try {
    return JSON.parse(text)
  } catch (cause) {
    return error("MalformedJson", `${what}: ${describeCause(cause)}`)
  }
}

/** `bytes[start, end)` parsed as UTF-8 JSON, or a `ProtocolError`. */
const readJson = (bytes: Uint8Array, start: number, end: number, what: string): unknown => {
  const text = decodeUtf8(bytes, start, end)
  return text === undefined ? error("MalformedJson", `${what} is not valid UTF-8`) : parseJson(text, what)
}

/** The JSON metadata of kinds 3 and 4, out of the decoded region when there is one. */
const readMeta = (bytes: Uint8Array, region: string | undefined, base: number, start: number, end: number): unknown =>
  region !== undefined
    ? parseJson(region.slice(start - base, end - base), "broadcast metadata")
    : readJson(bytes, start, end, "broadcast metadata")

/** The UTF-8 byte length of `s` (a lone surrogate counts as U+FFFD, as `TextEncoder` writes it). */
const utf8Length = (s: string): number => {
  const n = s.length
  let bytes = n
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) {
      bytes += 1
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2 // a surrogate pair: 2 code units, 4 bytes
      i++
    } else {
      bytes += 2
    }
  }
  return bytes
}

const writeString = (s: string, out: Uint8Array, offset: number, byteLength: number): number => {
  if (byteLength === s.length) {
    for (let i = 0; i < byteLength; i++) out[offset + i] = s.charCodeAt(i)
  } else {
    textEncoder.encodeInto(s, view(out, offset, offset + byteLength))
  }
  return offset + byteLength
}

/** `Uint8Array`s as they are, `ArrayBuffer`s and other views as a `Uint8Array` over the same bytes. */
const asBytes = (u: unknown): Uint8Array | undefined => {
  if (u instanceof Uint8Array) return u
  if (u instanceof ArrayBuffer) return new Uint8Array(u)
  if (ArrayBuffer.isView(u)) return new Uint8Array(u.buffer, u.byteOffset, u.byteLength)
  return undefined
}

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null

const hasOwn = Object.prototype.hasOwnProperty

/**
 * A binary frame: `kind`, one length byte per field, the `encoding` byte (if `encoding >= 0`), the
 * fields in UTF-8, then `body`.
 */
const buildFrame = (
  kind: number,
  names: ReadonlyArray<string>,
  fields: ReadonlyArray<string>,
  encoding: number,
  body: unknown
): Either.Either<Uint8Array, ProtocolError> => {
  const bytes = asBytes(body)
  if (bytes === undefined) return fail("UnsupportedPayload", `the data of a kind ${kind} binary frame must be bytes`)
  const n = fields.length
  const lengths: Array<number> = new Array(n)
  let total = 1 + n + (encoding >= 0 ? 1 : 0) + bytes.length
  for (let i = 0; i < n; i++) {
    const field = fields[i]
    if (typeof field !== "string") return fail("InvalidEnvelope", `${names[i]} must be a string`)
    const length = utf8Length(field)
    if (length > MAX_FIELD_LENGTH) {
      return fail("FieldTooLong", `${names[i]} length ${length} exceeds maximum of ${MAX_FIELD_LENGTH}`)
    }
    lengths[i] = length
    total += length
  }
  const out = new Uint8Array(total)
  out[0] = kind
  let offset = 1
  for (let i = 0; i < n; i++) out[offset++] = lengths[i]!
  if (encoding >= 0) out[offset++] = encoding
  for (let i = 0; i < n; i++) offset = writeString(fields[i]!, out, offset, lengths[i]!)
  out.set(bytes, offset)
  return Either.right(out)
}

/** `JSON.stringify`, or an `UnsupportedPayload` error (`what`, `event` only describe it, on failure). */
const stringify = (value: unknown, what: string, event?: string): string | ProtocolError => {
  let json: string | undefined
  let cause = ""
  try {
    json = JSON.stringify(value)
  } catch (e) {
    cause = `: ${describeCause(e)}`
  }
  return json !== undefined
    ? json
    : error(
      "UnsupportedPayload",
      `${what}${event === undefined ? "" : ` of '${event}'`} cannot be encoded as JSON${cause}`
    )
}

/** A user payload: raw bytes (encoding 0) or UTF-8 JSON (encoding 1, `undefined`/`null` as `{}`). */
const userPayloadBody = (payload: unknown): Uint8Array | ProtocolError => {
  const bytes = asBytes(payload)
  if (bytes !== undefined) return bytes
  const json = stringify(payload ?? {}, "broadcast payload")
  return typeof json === "string" ? textEncoder.encode(json) : json
}

const checkMessage = (message: Message): ProtocolError | undefined => {
  if (!isObject(message)) return error("InvalidEnvelope", "message is not an object")
  const { event, joinRef, ref, topic } = message
  if (typeof topic !== "string") return error("InvalidEnvelope", "topic must be a string")
  if (typeof event !== "string") return error("InvalidEnvelope", "event must be a string")
  if (joinRef !== null && typeof joinRef !== "string") {
    return error("InvalidEnvelope", "join_ref must be a string or null")
  }
  if (ref !== null && typeof ref !== "string") return error("InvalidEnvelope", "ref must be a string or null")
  return undefined
}

const truncated = (kind: number, length: number, needed: number): Either.Either<never, ProtocolError> =>
  fail("TruncatedFrame", `binary frame of kind ${kind} has ${length} bytes, its header declares at least ${needed}`)

const invalidString = (kind: number, field: string): Either.Either<never, ProtocolError> =>
  fail("InvalidEnvelope", `${field} of a kind ${kind} binary frame is not valid UTF-8`)

const unknownEncoding = (kind: number, encoding: number): Either.Either<never, ProtocolError> =>
  fail("InvalidEnvelope", `unknown payload encoding ${encoding} in a kind ${kind} binary frame`)

const unknownKind = (kind: number, side: string): Either.Either<never, ProtocolError> =>
  fail("UnknownBinaryKind", `binary frame of kind ${kind} is not decoded by the ${side}`)

// -------------------------------------------------------------------------------------
// internal: text frames
// -------------------------------------------------------------------------------------

const decodeV2Text = (frame: string): Either.Either<Message, ProtocolError> => {
  let json: unknown
  try {
    json = JSON.parse(frame)
  } catch (cause) {
    return fail("MalformedJson", describeCause(cause))
  }
  if (!Array.isArray(json) || json.length < 5) {
    return fail("InvalidEnvelope", "expected a JSON array [join_ref, ref, topic, event, payload]")
  }
  const joinRef = json[0]
  const ref = json[1]
  const topic = json[2]
  const event = json[3]
  if (joinRef !== null && typeof joinRef !== "string") {
    return fail("InvalidEnvelope", "join_ref must be a string or null")
  }
  if (ref !== null && typeof ref !== "string") return fail("InvalidEnvelope", "ref must be a string or null")
  if (typeof topic !== "string") return fail("InvalidEnvelope", "topic must be a string")
  if (typeof event !== "string") return fail("InvalidEnvelope", "event must be a string")
  return Either.right({ joinRef, ref, topic, event, payload: json[4] })
}

const encodeV2Text = (message: Message): Either.Either<Frame, ProtocolError> => {
  const json = stringify(
    [message.joinRef, message.ref, message.topic, message.event, message.payload],
    "payload",
    message.event
  )
  return typeof json === "string" ? Either.right(json) : Either.left(json)
}

const decodeV1Text = (frame: string): Either.Either<Message, ProtocolError> => {
  let json: unknown
  try {
    json = JSON.parse(frame)
  } catch (cause) {
    return fail("MalformedJson", describeCause(cause))
  }
  if (!isObject(json) || Array.isArray(json)) {
    return fail("InvalidEnvelope", "expected a JSON object {topic, event, payload, ref, join_ref}")
  }
  const topic = json.topic
  const event = json.event
  const payload = json.payload
  const ref = json.ref ?? null
  const joinRef = json.join_ref ?? null
  if (joinRef !== null && typeof joinRef !== "string") {
    return fail("InvalidEnvelope", "join_ref must be a string or null")
  }
  if (ref !== null && typeof ref !== "string") return fail("InvalidEnvelope", "ref must be a string or null")
  if (typeof topic !== "string") return fail("InvalidEnvelope", "topic must be a string")
  if (typeof event !== "string") return fail("InvalidEnvelope", "event must be a string")
  if (payload === undefined) return fail("InvalidEnvelope", "payload is missing")
  return Either.right({ joinRef, ref, topic, event, payload })
}

const encodeV1Text = (message: Message, withJoinRef: boolean): Either.Either<Frame, ProtocolError> => {
  const invalid = checkMessage(message)
  if (invalid !== undefined) return Either.left(invalid)
  const payload = message.payload
  if (asBytes(payload) !== undefined || (isObject(payload) && asBytes(payload.payload) !== undefined)) {
    return fail("UnsupportedPayload", `binary payload of '${message.event}' needs vsn 2.0.0`)
  }
  const object = withJoinRef && message.joinRef !== null
    ? { topic: message.topic, event: message.event, payload, ref: message.ref, join_ref: message.joinRef }
    : { topic: message.topic, event: message.event, payload, ref: message.ref }
  const json = stringify(object, "payload", message.event)
  return typeof json === "string" ? Either.right(json) : Either.left(json)
}

const decodeV1 = (frame: Frame): Either.Either<Message, ProtocolError> =>
  typeof frame === "string"
    ? decodeV1Text(frame)
    : fail("InvalidEnvelope", "binary frames are not part of vsn 1.0.0")

// -------------------------------------------------------------------------------------
// internal: binary frames, client side
// -------------------------------------------------------------------------------------

/** kind 0, server → client: `0, jr len, topic len, event len, jr, topic, event, data` (no ref). */
const decodeServerPush = (bytes: Uint8Array): Either.Either<Message, ProtocolError> => {
  const length = bytes.length
  if (length < 4) return truncated(0, length, 4)
  const joinRefEnd = 4 + bytes[1]!
  const topicEnd = joinRefEnd + bytes[2]!
  const eventEnd = topicEnd + bytes[3]!
  if (eventEnd > length) return truncated(0, length, eventEnd)
  const region = readRegion(bytes, 4, eventEnd)
  const joinRef = readField(bytes, region, 4, 4, joinRefEnd)
  if (joinRef === undefined) return invalidString(0, "join_ref")
  const topic = readField(bytes, region, 4, joinRefEnd, topicEnd)
  if (topic === undefined) return invalidString(0, "topic")
  const event = readField(bytes, region, 4, topicEnd, eventEnd)
  if (event === undefined) return invalidString(0, "event")
  return Either.right({
    joinRef: joinRef === "" ? null : joinRef,
    ref: null,
    topic,
    event,
    payload: copy(bytes, eventEnd, length)
  })
}

/**
 * The layout kinds 1 and 0 (client → server) share: `kind, jr len, ref len, topic len, name len, jr,
 * ref, topic, name, data`, where `name` is the reply status or the event.
 */
const decodeRefHeader = (
  bytes: Uint8Array,
  kind: number,
  nameField: string
): Either.Either<
  {
    readonly joinRef: string | null
    readonly ref: string | null
    readonly topic: string
    readonly name: string
    readonly data: Uint8Array
  },
  ProtocolError
> => {
  const length = bytes.length
  if (length < 5) return truncated(kind, length, 5)
  const joinRefEnd = 5 + bytes[1]!
  const refEnd = joinRefEnd + bytes[2]!
  const topicEnd = refEnd + bytes[3]!
  const nameEnd = topicEnd + bytes[4]!
  if (nameEnd > length) return truncated(kind, length, nameEnd)
  const region = readRegion(bytes, 5, nameEnd)
  const joinRef = readField(bytes, region, 5, 5, joinRefEnd)
  if (joinRef === undefined) return invalidString(kind, "join_ref")
  const ref = readField(bytes, region, 5, joinRefEnd, refEnd)
  if (ref === undefined) return invalidString(kind, "ref")
  const topic = readField(bytes, region, 5, refEnd, topicEnd)
  if (topic === undefined) return invalidString(kind, "topic")
  const name = readField(bytes, region, 5, topicEnd, nameEnd)
  if (name === undefined) return invalidString(kind, nameField)
  return Either.right({
    joinRef: joinRef === "" ? null : joinRef,
    ref: ref === "" ? null : ref,
    topic,
    name,
    data: copy(bytes, nameEnd, length)
  })
}

/** kind 1: `1, jr len, ref len, topic len, status len, jr, ref, topic, status, data`. */
const decodeReply = (bytes: Uint8Array): Either.Either<Message, ProtocolError> =>
  Either.map(decodeRefHeader(bytes, 1, "status"), (h) => ({
    joinRef: h.joinRef,
    ref: h.ref,
    topic: h.topic,
    event: Events.reply,
    payload: { status: h.name, response: h.data }
  }))

/** kind 2: `2, topic len, event len, topic, event, data`. */
const decodeBroadcast = (bytes: Uint8Array): Either.Either<Message, ProtocolError> => {
  const length = bytes.length
  if (length < 3) return truncated(2, length, 3)
  const topicEnd = 3 + bytes[1]!
  const eventEnd = topicEnd + bytes[2]!
  if (eventEnd > length) return truncated(2, length, eventEnd)
  const region = readRegion(bytes, 3, eventEnd)
  const topic = readField(bytes, region, 3, 3, topicEnd)
  if (topic === undefined) return invalidString(2, "topic")
  const event = readField(bytes, region, 3, topicEnd, eventEnd)
  if (event === undefined) return invalidString(2, "event")
  return Either.right({ joinRef: null, ref: null, topic, event, payload: copy(bytes, eventEnd, length) })
}

/** The user payload of kinds 3 and 4: a copy of the bytes (encoding 0) or parsed JSON (encoding 1). */
const readUserPayload = (bytes: Uint8Array, start: number, encoding: number): unknown =>
  encoding === PayloadEncoding.binary
    ? copy(bytes, start, bytes.length)
    : readJson(bytes, start, bytes.length, "broadcast payload")

/** kind 4: `4, topic len, event len, metadata len, encoding, topic, event, metadata, payload`. */
const decodeUserBroadcast = (bytes: Uint8Array): Either.Either<Message, ProtocolError> => {
  const length = bytes.length
  if (length < 5) return truncated(4, length, 5)
  const topicEnd = 5 + bytes[1]!
  const eventEnd = topicEnd + bytes[2]!
  const metaLength = bytes[3]!
  const metaEnd = eventEnd + metaLength
  const encoding = bytes[4]!
  if (metaEnd > length) return truncated(4, length, metaEnd)
  if (encoding > PayloadEncoding.json) return unknownEncoding(4, encoding)
  const region = readRegion(bytes, 5, metaEnd)
  const topic = readField(bytes, region, 5, 5, topicEnd)
  if (topic === undefined) return invalidString(4, "topic")
  const event = readField(bytes, region, 5, topicEnd, eventEnd)
  if (event === undefined) return invalidString(4, "user event")
  const payload = readUserPayload(bytes, metaEnd, encoding)
  if (payload instanceof ProtocolError) return Either.left(payload)
  if (metaLength === 0) {
    return Either.right({
      joinRef: null,
      ref: null,
      topic,
      event: Events.broadcast,
      payload: { type: Events.broadcast, event, payload }
    })
  }
  const meta = readMeta(bytes, region, 5, eventEnd, metaEnd)
  if (meta instanceof ProtocolError) return Either.left(meta)
  return Either.right({
    joinRef: null,
    ref: null,
    topic,
    event: Events.broadcast,
    payload: { type: Events.broadcast, event, payload, meta }
  })
}

const decodeV2Binary = (bytes: Uint8Array): Either.Either<Message, ProtocolError> => {
  if (bytes.length === 0) return fail("TruncatedFrame", "empty binary frame")
  switch (bytes[0]) {
    case BinaryKind.userBroadcast:
      return decodeUserBroadcast(bytes)
    case BinaryKind.push:
      return decodeServerPush(bytes)
    case BinaryKind.reply:
      return decodeReply(bytes)
    case BinaryKind.broadcast:
      return decodeBroadcast(bytes)
    default:
      return unknownKind(bytes[0]!, "client")
  }
}

const decodeV2 = (frame: Frame): Either.Either<Message, ProtocolError> =>
  typeof frame === "string"
    ? decodeV2Text(frame)
    : frame instanceof Uint8Array
    ? decodeV2Binary(frame)
    : fail("InvalidEnvelope", "a frame must be a string or a Uint8Array")

const KIND_3_NAMES = ["joinRef", "ref", "topic", "userEvent", "metadata"] as const
const KIND_0_CLIENT_NAMES = ["joinRef", "ref", "topic", "event"] as const

const pickMetadata = (
  payload: Record<string, unknown>,
  keys: ReadonlyArray<string>
): Record<string, unknown> | undefined => {
  let picked: Record<string, unknown> | undefined
  if (keys.length === 1) {
    const key = keys[0]!
    if (hasOwn.call(payload, key) && payload[key] !== undefined) picked = { [key]: payload[key] }
    return picked
  }
  // in the payload's key order, as realtime-js
  for (const key of Object.keys(payload)) {
    if (payload[key] !== undefined && keys.includes(key)) {
      if (picked === undefined) picked = {}
      picked[key] = payload[key]
    }
  }
  return picked
}

/** kind 3, client → server. */
const encodeUserBroadcastPush = (
  message: Message,
  payload: Record<string, unknown>,
  userEvent: string,
  metadataKeys: ReadonlyArray<string>
): Either.Either<Frame, ProtocolError> => {
  let metadata = ""
  if (metadataKeys.length > 0) {
    const picked = pickMetadata(payload, metadataKeys)
    if (picked !== undefined) {
      const json = stringify(picked, "broadcast metadata")
      if (typeof json !== "string") return Either.left(json)
      metadata = json
    }
  }
  const userPayload = payload.payload
  const body = userPayloadBody(userPayload)
  if (body instanceof ProtocolError) return Either.left(body)
  return buildFrame(
    BinaryKind.userBroadcastPush,
    KIND_3_NAMES,
    [message.joinRef ?? "", message.ref ?? "", message.topic, userEvent, metadata],
    asBytes(userPayload) === undefined ? PayloadEncoding.json : PayloadEncoding.binary,
    body
  )
}

const makeEncodeV2 =
  (metadataKeys: ReadonlyArray<string>) => (message: Message): Either.Either<Frame, ProtocolError> => {
    const invalid = checkMessage(message)
    if (invalid !== undefined) return Either.left(invalid)
    const payload = message.payload
    if (message.event === Events.broadcast && isObject(payload) && typeof payload.event === "string") {
      return encodeUserBroadcastPush(message, payload, payload.event, metadataKeys)
    }
    const bytes = asBytes(payload)
    if (bytes !== undefined) {
      // kind 0, client → server: `0, jr len, ref len, topic len, event len, jr, ref, topic, event, data`
      return buildFrame(
        BinaryKind.push,
        KIND_0_CLIENT_NAMES,
        [message.joinRef ?? "", message.ref ?? "", message.topic, message.event],
        -1,
        bytes
      )
    }
    return encodeV2Text(message)
  }

// -------------------------------------------------------------------------------------
// internal: binary frames, server side
// -------------------------------------------------------------------------------------

/** kind 0, client → server: `0, jr len, ref len, topic len, event len, jr, ref, topic, event, data`. */
const decodeClientPush = (bytes: Uint8Array): Either.Either<Message, ProtocolError> =>
  Either.map(decodeRefHeader(bytes, 0, "event"), (h) => ({
    joinRef: h.joinRef,
    ref: h.ref,
    topic: h.topic,
    event: h.name,
    payload: h.data
  }))

/**
 * kind 3: `3, jr len, ref len, topic len, event len, metadata len, encoding, jr, ref, topic, event,
 * metadata, payload`.
 */
const decodeUserBroadcastPush = (bytes: Uint8Array): Either.Either<Message, ProtocolError> => {
  const length = bytes.length
  if (length < 7) return truncated(3, length, 7)
  const joinRefEnd = 7 + bytes[1]!
  const refEnd = joinRefEnd + bytes[2]!
  const topicEnd = refEnd + bytes[3]!
  const eventEnd = topicEnd + bytes[4]!
  const metaLength = bytes[5]!
  const metaEnd = eventEnd + metaLength
  const encoding = bytes[6]!
  if (metaEnd > length) return truncated(3, length, metaEnd)
  if (encoding > PayloadEncoding.json) return unknownEncoding(3, encoding)
  const region = readRegion(bytes, 7, metaEnd)
  const joinRef = readField(bytes, region, 7, 7, joinRefEnd)
  if (joinRef === undefined) return invalidString(3, "join_ref")
  const ref = readField(bytes, region, 7, joinRefEnd, refEnd)
  if (ref === undefined) return invalidString(3, "ref")
  const topic = readField(bytes, region, 7, refEnd, topicEnd)
  if (topic === undefined) return invalidString(3, "topic")
  const event = readField(bytes, region, 7, topicEnd, eventEnd)
  if (event === undefined) return invalidString(3, "user event")
  const payload = readUserPayload(bytes, metaEnd, encoding)
  if (payload instanceof ProtocolError) return Either.left(payload)
  let meta: unknown = undefined
  if (metaLength > 0) {
    meta = readMeta(bytes, region, 7, eventEnd, metaEnd)
    if (meta instanceof ProtocolError) return Either.left(meta)
    if (!isObject(meta) || Array.isArray(meta)) return fail("InvalidEnvelope", "broadcast metadata must be an object")
  }
  return Either.right({
    joinRef: joinRef === "" ? null : joinRef,
    ref: ref === "" ? null : ref,
    topic,
    event: Events.broadcast,
    // metadata keys (e.g. `persist`) come back as payload keys, but never override type/event/payload
    payload: meta === undefined
      ? { type: Events.broadcast, event, payload }
      : { ...meta, type: Events.broadcast, event, payload }
  })
}

const decodeServerV2Binary = (bytes: Uint8Array): Either.Either<Message, ProtocolError> => {
  if (bytes.length === 0) return fail("TruncatedFrame", "empty binary frame")
  switch (bytes[0]) {
    case BinaryKind.userBroadcastPush:
      return decodeUserBroadcastPush(bytes)
    case BinaryKind.push:
      return decodeClientPush(bytes)
    default:
      return unknownKind(bytes[0]!, "server")
  }
}

const KIND_0_SERVER_NAMES = ["joinRef", "topic", "event"] as const
const KIND_1_NAMES = ["joinRef", "ref", "topic", "status"] as const
const KIND_2_NAMES = ["topic", "event"] as const
const KIND_4_NAMES = ["topic", "userEvent", "metadata"] as const

/**
 * Encodes a Phoenix push (binary kind 0, server → client layout, which has no `ref`).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodePhoenixPush = (args: {
  readonly joinRef: string | null
  readonly topic: string
  readonly event: string
  readonly payload: Uint8Array
}): Either.Either<Uint8Array, ProtocolError> =>
  buildFrame(BinaryKind.push, KIND_0_SERVER_NAMES, [args.joinRef ?? "", args.topic, args.event], -1, args.payload)

/**
 * Encodes a Phoenix reply (binary kind 1, server → client).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodePhoenixReply = (args: {
  readonly joinRef: string | null
  readonly ref: string | null
  readonly topic: string
  readonly status: string
  readonly response: Uint8Array
}): Either.Either<Uint8Array, ProtocolError> =>
  buildFrame(
    BinaryKind.reply,
    KIND_1_NAMES,
    [args.joinRef ?? "", args.ref ?? "", args.topic, args.status],
    -1,
    args.response
  )

/**
 * Encodes a Phoenix broadcast (binary kind 2, server → client).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodePhoenixBroadcast = (args: {
  readonly topic: string
  readonly event: string
  readonly payload: Uint8Array
}): Either.Either<Uint8Array, ProtocolError> =>
  buildFrame(BinaryKind.broadcast, KIND_2_NAMES, [args.topic, args.event], -1, args.payload)

/**
 * Encodes a Supabase user broadcast (binary kind 4, server → client). A `Uint8Array` (or
 * `ArrayBuffer`) payload is sent as raw bytes (encoding 0), anything else as JSON (encoding 1).
 * `meta`, when given, is sent as the metadata JSON.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeUserBroadcast = (args: {
  readonly topic: string
  readonly event: string
  readonly payload: unknown
  readonly meta?: Record<string, unknown> | undefined
}): Either.Either<Uint8Array, ProtocolError> => {
  let metadata = ""
  if (args.meta !== undefined) {
    const json = stringify(args.meta, "broadcast metadata")
    if (typeof json !== "string") return Either.left(json)
    metadata = json
  }
  const body = userPayloadBody(args.payload)
  if (body instanceof ProtocolError) return Either.left(body)
  return buildFrame(
    BinaryKind.userBroadcast,
    KIND_4_NAMES,
    [args.topic, args.event, metadata],
    asBytes(args.payload) === undefined ? PayloadEncoding.json : PayloadEncoding.binary,
    body
  )
}

/**
 * Server → client vsn 2.0.0: binary payloads are framed in binary (a `Uint8Array` payload as kind 2
 * without join ref or kind 0 with one — the `ref` is dropped, server pushes have none; a reply whose
 * `response` is a `Uint8Array` as kind 1; a broadcast whose user payload is a `Uint8Array` as kind 4);
 * everything else is a text frame.
 */
const encodeServerV2 = (message: Message): Either.Either<Frame, ProtocolError> => {
  const invalid = checkMessage(message)
  if (invalid !== undefined) return Either.left(invalid)
  const payload = message.payload
  const bytes = asBytes(payload)
  if (bytes !== undefined) {
    return message.joinRef === null
      ? encodePhoenixBroadcast({ topic: message.topic, event: message.event, payload: bytes })
      : encodePhoenixPush({ joinRef: message.joinRef, topic: message.topic, event: message.event, payload: bytes })
  }
  if (isObject(payload)) {
    if (message.event === Events.reply && typeof payload.status === "string") {
      const response = asBytes(payload.response)
      if (response !== undefined) {
        return encodePhoenixReply({
          joinRef: message.joinRef,
          ref: message.ref,
          topic: message.topic,
          status: payload.status,
          response
        })
      }
    } else if (
      message.event === Events.broadcast && typeof payload.event === "string" && asBytes(payload.payload) !== undefined
    ) {
      const meta = payload.meta
      return encodeUserBroadcast(
        isObject(meta)
          ? { topic: message.topic, event: payload.event, payload: payload.payload, meta }
          : { topic: message.topic, event: payload.event, payload: payload.payload }
      )
    }
  }
  return encodeV2Text(message)
}

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

/**
 * The vsn 1.0.0 client serializer: JSON object text frames (`join_ref` omitted when `null`). Binary
 * frames and binary payloads are a `ProtocolError`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeV1 = (): Serializer => ({
  vsn: "1.0.0",
  encode: (message) => encodeV1Text(message, true),
  decode: decodeV1
})

/**
 * The vsn 2.0.0 client serializer. A `broadcast` whose payload has a string `event` is sent as a
 * binary user broadcast push (kind 3) carrying the `metadataKeys` of the payload (default
 * `["persist"]`); a `Uint8Array` payload as a Phoenix binary push (kind 0); everything else as a JSON
 * array text frame. Decodes text frames and binary kinds 0, 1, 2 and 4.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeV2 = (options?: { readonly metadataKeys?: ReadonlyArray<string> | undefined }): Serializer => ({
  vsn: "2.0.0",
  encode: makeEncodeV2(options?.metadataKeys ?? ["persist"]),
  decode: decodeV2
})

/**
 * @since 0.1.0
 * @category constructors
 */
export const v1: Serializer = makeV1()

/**
 * @since 0.1.0
 * @category constructors
 */
export const v2: Serializer = makeV2()

/**
 * The default client serializer of a version.
 *
 * @since 0.1.0
 * @category constructors
 */
export const serializer = (vsn: Vsn): Serializer => vsn === "1.0.0" ? v1 : v2

/**
 * The vsn 1.0.0 server serializer: decodes client objects, encodes `{topic, event, payload, ref}`
 * (servers never send `join_ref` on vsn 1.0.0).
 *
 * @since 0.1.0
 * @category constructors
 */
export const serverV1: ServerSerializer = {
  vsn: "1.0.0",
  decode: decodeV1,
  encode: (message) => encodeV1Text(message, false)
}

/**
 * The vsn 2.0.0 server serializer: decodes text frames and binary kinds 0 (client layout, with ref)
 * and 3; encodes text frames, and binary kinds 0, 1, 2, 4 for binary payloads.
 *
 * @since 0.1.0
 * @category constructors
 */
export const serverV2: ServerSerializer = {
  vsn: "2.0.0",
  decode: (frame) =>
    typeof frame === "string"
      ? decodeV2Text(frame)
      : frame instanceof Uint8Array
      ? decodeServerV2Binary(frame)
      : fail("InvalidEnvelope", "a frame must be a string or a Uint8Array"),
  encode: encodeServerV2
}
