/**
 * A channel: one Realtime topic joined over the client's socket (the Effect 4 edition). Its status is observable, its
 * events are `Stream`s (broadcast, Postgres changes, presence, system), `subscribe` is a scoped
 * resource (leaves when the scope closes), and every push resolves once: written, acked, rejected
 * with the server's reason, or timed out.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as Config from "../../src/core/channel/config.js"
import type * as PostgresChanges from "./PostgresChanges.js"
import type * as Presence from "./Presence.js"
import type * as Protocol from "./Protocol.js"
import type {
  AccessTokenError,
  BufferFull,
  ChannelClosed,
  HttpBroadcastFailed,
  InvalidArgument,
  JoinRejected,
  JoinTimeout,
  PayloadDecodeError,
  PayloadTooLarge,
  PostgresBindingMismatch,
  ProtocolError,
  PushRejected,
  PushTimeout,
  SocketClosed,
  TokenExpired
} from "./RealtimeError.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("supabase-realtime-effect/RealtimeChannel")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * A channel's configuration: what realtime-js calls `config`, in camelCase.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChannelConfig extends Config.ChannelConfig<PostgresChanges.Binding> {}

/**
 * Per-channel options that are not part of the join (they do not make two configs differ).
 *
 * @since 0.1.0
 * @category models
 */
export interface ChannelOptions {
  /** Reply timeout of the join and pushes; default: the client's (10 s). */
  readonly timeout?: Duration.Input | undefined
  /** Send over HTTP when the channel is not joined and an `HttpBroadcast` layer is provided. Default true. */
  readonly httpFallback?: boolean | undefined
  /**
   * How many events each stream's consumer may lag behind (offered and not yet taken); default
   * 65 536. The events of one I/O turn always queue whole, so a consumer that keeps up loses
   * nothing whatever this is; past it, the newest are dropped, counted and logged.
   */
  readonly bufferSize?: number | undefined
  /** Rejoin failures in a row after which the channel stops with an error; default 10. */
  readonly maxRejoinFailures?: number | undefined
}

/**
 * The status of a channel.
 *
 * - `Idle`: created, not subscribed.
 * - `Joining`: a join is on the wire (`attempt` 0 for the first).
 * - `Subscribed`: joined; events flow. `rejoined`: this join replaced one the channel had lost (a
 *   socket drop, a crashed or restarted channel), `downtime` after it; events sent meanwhile may be
 *   missing (see `gaps`). The first join of a subscription has `rejoined: false`, zero downtime.
 * - `Errored`: the join was lost (socket closed, channel crashed, closed by the server: `reason`);
 *   a rejoin follows.
 * - `TimedOut`: a join got no reply in time; a rejoin follows.
 * - `Rejoining`: the next join starts after `delay`.
 * - `Closed`: left, removed, or stopped for good (`reason`).
 *
 * @since 0.1.0
 * @category models
 */
export type ChannelStatus = Data.TaggedEnum<{
  Idle: {}
  Joining: { readonly attempt: number }
  Subscribed: { readonly rejoined: boolean; readonly downtime: Duration.Duration }
  Errored: { readonly reason: string }
  TimedOut: { readonly timeoutMillis: number }
  Rejoining: { readonly attempt: number; readonly delay: Duration.Duration }
  Closed: { readonly reason: string }
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const ChannelStatus = Data.taggedEnum<ChannelStatus>()

/**
 * The channel was without a join for `downtime` and is subscribed again: events sent meanwhile may
 * not have reached it.
 *
 * On a private channel with `broadcast.replay`, every rejoin asks the server for the broadcasts
 * stored since the socket was last known alive; they reach the broadcast streams once each, in the
 * order they were sent, marked `meta.replayed` (what had already arrived is not delivered twice),
 * and `replayed` counts them. `complete` says the replay covered the gap for stored broadcasts: it
 * returned fewer than its limit, within the server's 72 h retention, and the channel has no
 * Postgres changes (they are never replayed). Otherwise `reason` says why. Broadcasts the server
 * did not store are never known to be missing. Presence needs no catch-up: the server's state
 * after the rejoin is diffed against the one before.
 *
 * @since 0.1.0
 * @category models
 */
export interface Gap {
  readonly downtime: Duration.Duration
  readonly replayed: number
  readonly complete: boolean
  /** Why the gap may hide missed events (empty when `complete`). */
  readonly reason: string
}

/**
 * A broadcast message as received.
 *
 * @since 0.1.0
 * @category models
 */
export interface Broadcast<A = unknown> {
  readonly event: string
  /** Decoded with the stream's schema; `Uint8Array` for binary broadcasts without one. */
  readonly payload: A
  /** `replayed` on messages replayed at join, `id` on messages stored by the server. */
  readonly meta: { readonly replayed?: boolean | undefined; readonly id?: string | undefined } | undefined
}

/**
 * A named broadcast event with the schema of its payload: use it on both sides
 * (`channel.broadcast(Cursor)`, `channel.send(Cursor, { x, y })`) and the payload is typed, encoded
 * and decoded the same way.
 *
 * @since 0.1.0
 * @category models
 */
export interface BroadcastEvent<A, I = A> {
  readonly event: string
  readonly schema: Schema.Codec<A, I>
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const broadcastEvent = <A, I>(event: string, schema: Schema.Codec<A, I>): BroadcastEvent<A, I> => ({
  event,
  schema
})

/**
 * @since 0.1.0
 * @category guards
 */
export const isBroadcastEvent = (u: unknown): u is BroadcastEvent<unknown, unknown> =>
  Predicate.hasProperty(u, "event") && Predicate.hasProperty(u, "schema") && typeof u.event === "string"

/**
 * Options of a typed stream (`broadcast` or `postgresChanges` with a schema).
 *
 * `onDecodeError`: what a payload that does not match the schema does. `"skip"` (the default): it
 * is skipped, counted in `realtime_payload_decode_failures` and logged, and the stream goes on.
 * `"fail"`: the stream emits what came before it, then fails with `PayloadDecodeError` (the event,
 * the parse issue, and the issue as bounded text).
 *
 * @since 0.1.0
 * @category models
 */
export interface DecodeOptions {
  readonly onDecodeError?: "skip" | "fail" | undefined
}

/**
 * {@link DecodeOptions} that end the stream on a payload that does not match.
 *
 * @since 0.1.0
 * @category models
 */
export interface FailOnDecodeError extends DecodeOptions {
  readonly onDecodeError: "fail"
}

/**
 * {@link DecodeOptions} that skip a payload that does not match (the default).
 *
 * @since 0.1.0
 * @category models
 */
export interface SkipOnDecodeError extends DecodeOptions {
  readonly onDecodeError?: "skip" | undefined
}

/**
 * A `system` message: `extension` (`system` or `postgres_changes`), `status` (`ok` or `error`), a
 * human `message`, and the subtopic.
 *
 * @since 0.1.0
 * @category models
 */
export type SystemMessage = Config.SystemMessage

/**
 * A presence event: `Sync` after each state or diff was applied, then per key `Join`, `Leave`, or
 * `Update` (a re-track, where realtime-js reports a leave plus a join).
 *
 * @since 0.1.0
 * @category models
 */
export type PresenceChange<A extends object> =
  | Presence.PresenceEvent<Presence.PresenceMeta<A>>
  | { readonly _tag: "Sync"; readonly state: PresenceSnapshot<A> }

/**
 * Who is present: key → metas (each with its `presence_ref`).
 *
 * @since 0.1.0
 * @category models
 */
export type PresenceSnapshot<A extends object> = ReadonlyMap<string, ReadonlyArray<Presence.PresenceMeta<A>>>

/**
 * Errors of a presence push (`track`, `untrack`): no reply in time, refused, too large for the
 * server, the socket or the join gone, the buffer full, or not encodable.
 *
 * @since 0.1.0
 * @category errors
 */
export type PresenceError =
  | PushTimeout
  | PushRejected
  | PayloadTooLarge
  | SocketClosed
  | BufferFull
  | ProtocolError
  | ChannelClosed

/**
 * Errors of joining.
 *
 * @since 0.1.0
 * @category errors
 */
export type JoinError =
  | JoinRejected
  | JoinTimeout
  | TokenExpired
  | ChannelClosed
  | SocketClosed
  | BufferFull
  | ProtocolError
  | InvalidArgument
  | PostgresBindingMismatch

/**
 * Errors of sending a broadcast.
 *
 * @since 0.1.0
 * @category errors
 */
export type SendError =
  | PushTimeout
  | PushRejected
  | PayloadTooLarge
  | SocketClosed
  | BufferFull
  | ProtocolError
  | HttpBroadcastFailed
  | AccessTokenError
  | InvalidArgument
  | ChannelClosed

/**
 * @since 0.1.0
 * @category models
 */
export interface SendOptions {
  /** Reply timeout (with ack) or join wait timeout; default the channel's. */
  readonly timeout?: Duration.Input | undefined
  /** Store the message for replay (private channels, vsn 2.0.0): `true` or `{ ttl }` seconds. */
  readonly persist?: boolean | { readonly ttl: number } | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RealtimeChannel {
  readonly [TypeId]: TypeId
  /** `realtime:<name>` */
  readonly topic: string
  /** The name given to `client.channel`. */
  readonly name: string
  readonly config: ChannelConfig
  /** The current status. */
  readonly status: Effect.Effect<ChannelStatus>
  /** The current status, then every change; it ends (after `Closed`) when the channel is removed. */
  readonly statusChanges: Stream.Stream<ChannelStatus>

  /**
   * One `Gap` per rejoin, once the channel is subscribed again after losing its join: the moments
   * to refetch what the app derives from events (or to trust the replay, when `complete`).
   */
  readonly gaps: Stream.Stream<Gap>

  /**
   * Joins (once per channel however many subscribe) and succeeds when the server accepted the
   * join. When the scope closes and no other subscription holds the channel, it leaves.
   *
   * A stream forked before `subscribe` sees every event after the join. In Effect 4 a forked fiber
   * starts a scheduler turn later, and each fork inside a stream (a `Stream.merge`) one more: the
   * first join waits three turns, so a merge of merges is listening in time even when the server
   * answers at once (the in-process test server in memory). Deeper nesting can miss the first
   * events of such an instant answer; an answer over a network comes turns later.
   */
  readonly subscribe: Effect.Effect<void, JoinError, Scope.Scope>

  /**
   * Broadcasts of one event (`"*"` for all), decoded with `schema`: payloads that do not match are
   * logged, counted and skipped, or end the stream with `PayloadDecodeError` with
   * `{ onDecodeError: "fail" }`. Start the stream before `subscribe` to see everything from the join.
   */
  readonly broadcast: {
    <A, I>(event: BroadcastEvent<A, I>, options: FailOnDecodeError): Stream.Stream<Broadcast<A>, PayloadDecodeError>
    <A, I>(event: BroadcastEvent<A, I>, options?: SkipOnDecodeError): Stream.Stream<Broadcast<A>>
    <A, I>(event: BroadcastEvent<A, I>, options: DecodeOptions): Stream.Stream<Broadcast<A>, PayloadDecodeError>
    <A, I>(
      event: string,
      schema: Schema.Codec<A, I>,
      options: FailOnDecodeError
    ): Stream.Stream<Broadcast<A>, PayloadDecodeError>
    <A, I>(event: string, schema: Schema.Codec<A, I>, options?: SkipOnDecodeError): Stream.Stream<Broadcast<A>>
    <A, I>(
      event: string,
      schema: Schema.Codec<A, I>,
      options: DecodeOptions
    ): Stream.Stream<Broadcast<A>, PayloadDecodeError>
    (event: string): Stream.Stream<Broadcast<unknown>>
  }

  /**
   * Sends a broadcast. Joined: over the socket (binary kind 3 on vsn 2.0.0); with `ack` it succeeds
   * on the server's reply, without it once the frame is written. Not joined: over HTTP when an
   * `HttpBroadcast` layer is provided, else it waits for the join within the timeout.
   */
  readonly send: {
    <A, I>(event: BroadcastEvent<A, I>, payload: A, options?: SendOptions): Effect.Effect<void, SendError>
    (event: string, payload: unknown, options?: SendOptions): Effect.Effect<void, SendError>
  }

  /**
   * The changes of one binding of `config.postgresChanges` (matched by content), or of all of
   * them, with rows decoded by `schema` (or left as converted JSON; or typed by the generated
   * `Database` type of a `PostgresChanges.typed` binding). Rows that do not match are
   * logged, counted and skipped, or end the stream with `PayloadDecodeError` with
   * `{ onDecodeError: "fail" }`.
   */
  readonly postgresChanges: {
    <A>(
      binding: PostgresChanges.TypedBinding<A>,
      options: FailOnDecodeError
    ): Stream.Stream<PostgresChanges.Change<A>, InvalidArgument | PayloadDecodeError>
    <A>(
      binding: PostgresChanges.TypedBinding<A>,
      options?: SkipOnDecodeError
    ): Stream.Stream<PostgresChanges.Change<A>, InvalidArgument>
    <A>(
      binding: PostgresChanges.TypedBinding<A>,
      options: DecodeOptions
    ): Stream.Stream<PostgresChanges.Change<A>, InvalidArgument | PayloadDecodeError>
    <A, I>(
      binding: PostgresChanges.Binding | undefined,
      schema: Schema.Codec<A, I>,
      options: FailOnDecodeError
    ): Stream.Stream<PostgresChanges.Change<A>, InvalidArgument | PayloadDecodeError>
    <A, I>(
      binding: PostgresChanges.Binding | undefined,
      schema: Schema.Codec<A, I>,
      options?: SkipOnDecodeError
    ): Stream.Stream<PostgresChanges.Change<A>, InvalidArgument>
    <A, I>(
      binding: PostgresChanges.Binding | undefined,
      schema: Schema.Codec<A, I>,
      options: DecodeOptions
    ): Stream.Stream<PostgresChanges.Change<A>, InvalidArgument | PayloadDecodeError>
    (binding?: PostgresChanges.Binding): Stream.Stream<PostgresChanges.Change<Record<string, unknown>>, InvalidArgument>
  }

  /** `system` messages. */
  readonly system: Stream.Stream<SystemMessage>

  /**
   * Tracks this client's presence with `meta` (tracked again after every rejoin). Fails with
   * `PayloadTooLarge` when the server closes the channel for it (`Track message size exceeded`;
   * the meta is then forgotten, not tracked again), and with `ChannelClosed` when the server ends
   * the join before it answers.
   */
  readonly track: (
    meta: object,
    options?: { readonly timeout?: Duration.Input }
  ) => Effect.Effect<void, PresenceError | InvalidArgument>
  /** Stops tracking. */
  readonly untrack: (options?: { readonly timeout?: Duration.Input }) => Effect.Effect<void, PresenceError>

  /**
   * The presence of this channel, metas decoded with `schema` (metas that do not match are logged
   * and left out).
   */
  readonly presence: {
    <A extends object, I>(schema: Schema.Codec<A, I>): PresenceView<A>
    (): PresenceView<{ readonly [field: string]: unknown }>
  }

  /** The ids the server gave the Postgres bindings on the last join (by binding, in config order). */
  readonly bindingIds: Effect.Effect<Option.Option<ReadonlyArray<ReadonlyArray<number>>>>

  /** The last join payload sent (for inspection; the token is redacted). */
  readonly lastJoinPayload: Effect.Effect<Option.Option<Protocol.JoinPayload>>
}

/**
 * The presence of a channel, typed.
 *
 * @since 0.1.0
 * @category models
 */
export interface PresenceView<A extends object> {
  /** Who is present now. */
  readonly state: Effect.Effect<PresenceSnapshot<A>>
  /** Who is present, then every change. */
  readonly changes: Stream.Stream<PresenceSnapshot<A>>
  /** Sync, join, leave and update events. */
  readonly events: Stream.Stream<PresenceChange<A>>
  /**
   * How many are present now, without decoding a meta: `keys` distinct presence keys, `connections`
   * metas (one per tracking connection: a key open in two tabs counts once and twice).
   */
  readonly occupancy: Effect.Effect<Occupancy>
  /** The occupancy, then every change of it (equal counts are not repeated). */
  readonly occupancyChanges: Stream.Stream<Occupancy>
  /**
   * Tracks this client with `meta`, encoded with the view's schema first (a meta that does not
   * encode fails with `InvalidArgument` and sends nothing). Otherwise as the channel's `track`.
   */
  readonly track: (
    meta: A,
    options?: { readonly timeout?: Duration.Input }
  ) => Effect.Effect<void, PresenceError | InvalidArgument>
}

/**
 * How many are present on a channel.
 *
 * @since 0.1.0
 * @category models
 */
export interface Occupancy {
  /** Distinct presence keys. */
  readonly keys: number
  /** Metas: one per connection tracking under a key. */
  readonly connections: number
}

/**
 * The channels' metrics (global, prefixed `realtime_`): events dropped by streams that fell behind
 * their `bufferSize`, frames of an earlier join ignored, payloads that did not match a stream's
 * Schema, broadcasts not delivered twice (a replay overlapping live ones), rejoin attempts.
 *
 * @since 0.1.0
 * @category metrics
 */
export const metrics = {
  dropped: Metric.counter("realtime_events_dropped", {
    description: "Events dropped because a stream's buffer was full",
    incremental: true
  }),
  stale: Metric.counter("realtime_frames_stale", {
    description: "Channel frames ignored because they belong to an earlier join",
    incremental: true
  }),
  decodeFailures: Metric.counter("realtime_payload_decode_failures", {
    description: "Payloads that did not match the subscriber's schema (skipped)",
    incremental: true
  }),
  duplicates: Metric.counter("realtime_broadcasts_duplicate", {
    description: "Broadcasts not delivered because the same id had arrived already (a replay overlapping live ones)",
    incremental: true
  }),
  rejoins: Metric.counter("realtime_rejoins", {
    description: "Channel joins after the first of a subscription (rejoins and retried joins)",
    incremental: true
  })
} as const

/**
 * @since 0.1.0
 * @category guards
 */
export const isRealtimeChannel = (u: unknown): u is RealtimeChannel => Predicate.hasProperty(u, TypeId)
