/**
 * The Phoenix / Supabase Realtime wire protocol: the message model (as `Schema`s) and the pure,
 * synchronous serializers for vsn 1.0.0 (JSON objects) and vsn 2.0.0 (JSON arrays plus the binary
 * kinds 0–4), for both sides of the wire.
 *
 * The serializers never throw: every failure is a `ProtocolError` in a `Result.fail`. The decode path
 * is hand-written (one `JSON.parse`, shape checks, byte reads); the `Schema`s below are the documented
 * model (the single source of the wire types of this edition), and a property test proves that
 * `V2TextFrame` and the hand-written decoder agree.
 *
 * Binary payloads handed out by the decoders (`Uint8Array`) are always fresh copies: they never alias
 * the frame, so the transport may reuse its buffers.
 *
 * The codecs live in the Effect-free core, `core/protocol/`: `text.ts` (both versions' text frames),
 * `binary.ts` (the binary kinds, client and server side) over `bytes.ts` (errors, bytes, strings, frame
 * checks), `serializer.ts`; they return the core's plain result with a `ProtocolIssue`, which this
 * module turns into an Effect `Result` with a `ProtocolError` (`internal/protocol/codec.ts`). The
 * envelope's `Schema`s are built in `internal/protocol/frames.ts`.
 *
 * @since 0.1.0
 */
import type * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Binary from "../../src/core/protocol/binary.js"
import * as Constants from "../../src/core/protocol/constants.js"
import type * as Model from "../../src/core/protocol/model.js"
import * as CoreSerializer from "../../src/core/protocol/serializer.js"
import * as Codec from "./internal/protocol/codec.js"
import * as Frames from "./internal/protocol/frames.js"
import type { ProtocolError } from "./RealtimeError.js"

// -------------------------------------------------------------------------------------
// models
// -------------------------------------------------------------------------------------

/**
 * The serializer version, sent as the `vsn` query parameter.
 *
 * @since 0.1.0
 * @category models
 */
export type Vsn = Model.Vsn

/**
 * A WebSocket frame: text or binary (an `ArrayBuffer` is normalised to a `Uint8Array` by the transport).
 *
 * @since 0.1.0
 * @category models
 */
export type Frame = Model.Frame

/**
 * The Phoenix envelope, decoded. Wire slots are `[join_ref, ref, topic, event, payload]`.
 *
 * @since 0.1.0
 * @category models
 */
export type Message = Model.Message

/**
 * The client side of the wire: encodes what a client sends, decodes what a server sends.
 *
 * @since 0.1.0
 * @category models
 */
export interface Serializer
  extends Model.SerializerOf<Result.Result<Frame, ProtocolError>, Result.Result<Message, ProtocolError>>
{}

/**
 * The server side of the wire: decodes what a client sends, encodes what a server sends. Used by the
 * in-process test server and to prove interoperability.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerSerializer extends Serializer {}

// -------------------------------------------------------------------------------------
// constants
// -------------------------------------------------------------------------------------

/**
 * The topic of socket-level messages (heartbeats).
 *
 * @since 0.1.0
 * @category constants
 */
export const PHOENIX_TOPIC = Constants.PHOENIX_TOPIC

/**
 * Event names of the protocol.
 *
 * @since 0.1.0
 * @category constants
 */
export const Events = Constants.Events

/**
 * The kinds (first byte) of vsn 2.0.0 binary frames. `push`, `reply` and `broadcast` are Phoenix's,
 * `userBroadcastPush` (client → server) and `userBroadcast` (server → client) are Supabase's.
 *
 * @since 0.1.0
 * @category constants
 */
export const BinaryKind = Constants.BinaryKind

/**
 * The payload encoding byte of binary kinds 3 and 4.
 *
 * @since 0.1.0
 * @category constants
 */
export const PayloadEncoding = Constants.PayloadEncoding

/**
 * The largest UTF-8 byte length of a string field (ref, topic, event, metadata) in a binary frame.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_FIELD_LENGTH = Constants.MAX_FIELD_LENGTH

// -------------------------------------------------------------------------------------
// schemas: envelope
// -------------------------------------------------------------------------------------

/**
 * The decoded envelope as a `Schema` (the model of `Message`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Envelope = Frames.Envelope

/**
 * A vsn 2.0.0 text frame after `JSON.parse`: `[join_ref, ref, topic, event, payload, ...ignored]`,
 * transformed to and from a `Message`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const V2TextFrame = Frames.V2TextFrame

/**
 * A vsn 1.0.0 text frame after `JSON.parse`: `{topic, event, payload, ref, join_ref?}`. A missing
 * `ref` or `join_ref` decodes to `null`; `join_ref` is omitted on encode when `null`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const V1TextFrame = Frames.V1TextFrame

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
  status: Schema.Literals(["ok", "error"]),
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
export const PostgresChangeEvent = Schema.Literals(["*", "INSERT", "UPDATE", "DELETE"])

/**
 * @since 0.1.0
 * @category schemas
 */
export type PostgresChangeEvent = Schema.Schema.Type<typeof PostgresChangeEvent>

/** What a binding is, as sent with a join and as echoed in its reply. */
const bindingFields = {
  event: PostgresChangeEvent,
  schema: Schema.String,
  table: Schema.optional(Schema.String),
  filter: Schema.optional(Schema.String)
}

/**
 * One entry of `config.postgres_changes` of a join (in registration order).
 *
 * @since 0.1.0
 * @category schemas
 */
export const PostgresChangesFilter = Schema.Struct({
  ...bindingFields,
  select: Schema.optional(Schema.Array(Schema.String))
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface PostgresChangesFilter extends Schema.Schema.Type<typeof PostgresChangesFilter> {}

/**
 * `config.postgres_changes_options` of a join (newer servers): wait for the Postgres subscriptions
 * before replying, for at most `timeout` ms.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PostgresChangesOptions = Schema.Struct({
  wait: Schema.optional(Schema.Boolean),
  timeout: Schema.optional(Schema.Number)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface PostgresChangesOptions extends Schema.Schema.Type<typeof PostgresChangesOptions> {}

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
  postgres_changes_options: Schema.optional(PostgresChangesOptions),
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
export const PostgresChangesBinding = Schema.Struct({ id: Schema.Number, ...bindingFields })

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
 * binary user payloads). `meta` is the server's, `persist` the client's (store the message for
 * replay: `true`, or for `ttl` seconds; vsn 2.0.0 sends it as the binary frame's metadata).
 *
 * @since 0.1.0
 * @category schemas
 */
export const BroadcastPayload = Schema.Struct({
  type: Schema.Literal("broadcast"),
  event: Schema.String,
  payload: Schema.Unknown,
  meta: Schema.optional(BroadcastMeta),
  persist: Schema.optional(Schema.Union([Schema.Boolean, Schema.Struct({ ttl: Schema.Number })]))
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
export const PresenceMetaPayload = Schema.StructWithRest(
  Schema.Struct({
    phx_ref: Schema.String,
    phx_ref_prev: Schema.optional(Schema.String)
  }),
  [Schema.Record(Schema.String, Schema.Unknown)]
)

/**
 * @since 0.1.0
 * @category schemas
 */
export type PresenceMetaPayload = Schema.Schema.Type<typeof PresenceMetaPayload>

/**
 * @since 0.1.0
 * @category schemas
 * @deprecated renamed `PresenceMetaPayload` (`Presence.PresenceMeta` is the client's meta); this
 * alias goes in the next release
 */
export const PresenceMeta: typeof PresenceMetaPayload = PresenceMetaPayload

/**
 * @since 0.1.0
 * @category schemas
 * @deprecated renamed `PresenceMetaPayload`; this alias goes in the next release
 */
export type PresenceMeta = PresenceMetaPayload

/**
 * The presences of one key.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PresenceEntry = Schema.Struct({
  metas: Schema.Array(PresenceMetaPayload)
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
export const PresenceStatePayload = Schema.Record(Schema.String, PresenceEntry)

/**
 * @since 0.1.0
 * @category schemas
 */
export type PresenceStatePayload = Schema.Schema.Type<typeof PresenceStatePayload>

/**
 * @since 0.1.0
 * @category schemas
 * @deprecated renamed `PresenceStatePayload` (`Presence.PresenceState` is the client's synced
 * state, `RealtimeServer.PresenceTable` the test server's); this alias goes in the next release
 */
export const PresenceState: typeof PresenceStatePayload = PresenceStatePayload

/**
 * @since 0.1.0
 * @category schemas
 * @deprecated renamed `PresenceStatePayload`; this alias goes in the next release
 */
export type PresenceState = PresenceStatePayload

/**
 * Payload of `presence_diff`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PresenceDiffPayload = Schema.Struct({
  joins: PresenceStatePayload,
  leaves: PresenceStatePayload
})

/**
 * @since 0.1.0
 * @category schemas
 */
export interface PresenceDiffPayload extends Schema.Schema.Type<typeof PresenceDiffPayload> {}

/**
 * @since 0.1.0
 * @category schemas
 * @deprecated renamed `PresenceDiffPayload`, as `PresenceStatePayload`; this alias goes in the next
 * release
 */
export const PresenceDiff: typeof PresenceDiffPayload = PresenceDiffPayload

/**
 * @since 0.1.0
 * @category schemas
 * @deprecated renamed `PresenceDiffPayload`; this alias goes in the next release
 */
export type PresenceDiff = PresenceDiffPayload

/**
 * Payload of a client `presence` push: track (with the fields to track) or untrack.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PresencePushPayload = Schema.Union([
  Schema.Struct({
    type: Schema.Literal("presence"),
    event: Schema.Literal("track"),
    payload: Schema.Record(Schema.String, Schema.Unknown)
  }),
  Schema.Struct({
    type: Schema.Literal("presence"),
    event: Schema.Literal("untrack")
  })
])

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
    type: Schema.Literals(["INSERT", "UPDATE", "DELETE"]),
    columns: Schema.Array(PostgresColumn),
    record: Schema.optional(Schema.Record(Schema.String, Schema.Unknown)),
    old_record: Schema.optional(Schema.Record(Schema.String, Schema.Unknown)),
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
  status: Schema.Literals(["ok", "error"]),
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
// binary frames (server side)
// -------------------------------------------------------------------------------------

/**
 * Encodes a Phoenix push (binary kind 0, server → client layout, which has no `ref`).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodePhoenixPush = Codec.lift(Binary.encodePhoenixPush)

/**
 * Encodes a Phoenix reply (binary kind 1, server → client).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodePhoenixReply = Codec.lift(Binary.encodePhoenixReply)

/**
 * Encodes a Phoenix broadcast (binary kind 2, server → client).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodePhoenixBroadcast = Codec.lift(Binary.encodePhoenixBroadcast)

/**
 * Encodes a Supabase user broadcast (binary kind 4, server → client). A `Uint8Array` (or
 * `ArrayBuffer`) payload is sent as raw bytes (encoding 0), anything else as JSON (encoding 1).
 * `meta`, when given, is sent as the metadata JSON.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeUserBroadcast = Codec.lift(Binary.encodeUserBroadcast)

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
export const makeV1 = (): Serializer => Codec.fromCore(CoreSerializer.makeV1())

/**
 * The vsn 2.0.0 client serializer. A `broadcast` whose payload has a string `event` is sent as a
 * binary user broadcast push (kind 3) carrying the `metadataKeys` of the payload (default
 * `["persist"]`); a `Uint8Array` payload as a Phoenix binary push (kind 0); everything else as a JSON
 * array text frame. Decodes text frames and binary kinds 0, 1, 2 and 4.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeV2 = (options?: Model.V2Options): Serializer => Codec.fromCore(CoreSerializer.makeV2(options))

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
export const serverV1: ServerSerializer = Codec.fromCore(CoreSerializer.serverV1)

/**
 * The vsn 2.0.0 server serializer: decodes text frames and binary kinds 0 (client layout, with ref)
 * and 3; encodes text frames, and binary kinds 0, 1, 2, 4 for binary payloads.
 *
 * @since 0.1.0
 * @category constructors
 */
export const serverV2: ServerSerializer = Codec.fromCore(CoreSerializer.serverV2)
