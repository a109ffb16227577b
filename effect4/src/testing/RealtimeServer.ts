/**
 * An in-process Supabase Realtime server for tests, examples and demos: it speaks the protocol of
 * the real server (vsn 1.0.0 and 2.0.0, binary kinds 3 and 4, the join config, the exact error
 * strings), so realtime code can be tested deterministically without a Supabase project.
 *
 * Reachable two ways:
 * - in memory: `acceptor` / `webSocketConstructor` / `webSocketClass` (for realtime-js's
 *   `transport`) connect without any network, and every timer runs on Effect's `Clock`, so
 *   `TestClock` drives idle timeouts, token expiry, join delays and rate-limit windows;
 * - on a real socket (`layerListen` / `makeListen`): a WebSocket + HTTP listener on 127.0.0.1
 *   (port 0 by default), at `/socket/websocket` and `/realtime/v1/websocket`, with the HTTP
 *   broadcast API under `/api/broadcast` and `/realtime/v1/api/broadcast`.
 *
 * Beyond the protocol: Postgres changes injected by the test (`emitChange`, real filter
 * evaluation), database broadcasts (`dbSend`) stored in `realtime.messages` and replayed to private
 * joins asking for it, private channels with a pluggable policy, rate limits with small configurable
 * thresholds, fault injection (drop sockets, stop heartbeats, delay or reject joins, crash or shut
 * down channels, refuse connections, expire tokens) and inspection (frames received per
 * connection, subscribers, presence, join payloads, stored messages, and `waitFor` over the server's
 * state).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RealtimeServer } from "supabase-realtime-effect/testing"
 *
 * const program = Effect.gen(function*() {
 *   const server = yield* RealtimeServer.RealtimeServer
 *   // ... connect a client with server.webSocketConstructor / server.url and server.apiKey
 *   yield* server.waitFor((state) => state.subscribers("room:1").length === 1 || undefined)
 *   yield* server.emitChange({ table: "todos", type: "INSERT", record: { id: 1 } })
 * }).pipe(Effect.provide(RealtimeServer.layer()))
 * ```
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientError from "effect/http/HttpClientError"
import type * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as Layer from "effect/Layer"
import type * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import * as Stream from "effect/Stream"
import { WebSocketServer } from "ws"
import type * as ProtocolModel from "../../../src/core/protocol/model.js"
import * as Engine from "../../../src/core/server/engine.js"
import * as HttpApi from "../../../src/core/server/http.js"
import * as Jwt from "../../../src/core/server/jwt.js"
import * as Listener from "../../../src/core/server/listener.js"
import type * as ServerModel from "../../../src/core/server/model.js"
import * as Postgres from "../../../src/core/server/postgres.js"
import * as Topic from "../../../src/core/topic.js"
import * as FakeSocket from "./FakeSocket.js"

// -------------------------------------------------------------------------------------
// tokens
// -------------------------------------------------------------------------------------

/**
 * The JWT secret of the Supabase CLI's local stack, used when no `jwtSecret` is given.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultJwtSecret = "super-secret-jwt-token-with-at-least-32-characters-long"

/**
 * Claims of a test token. `role` and `exp` (seconds since the epoch) are what the server requires;
 * leave them out to test the `Fields \`role\` and \`exp\` are required in JWT` path.
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenClaims {
  readonly role?: string | undefined
  readonly exp?: number | undefined
  readonly sub?: string | undefined
  readonly [claim: string]: unknown
}

/**
 * Signs a test JWT (HS256) with `secret` (default {@link defaultJwtSecret}).
 *
 * @since 0.1.0
 * @category tokens
 */
export const signToken = (claims: TokenClaims, secret: string = defaultJwtSecret): string => Jwt.sign(claims, secret)

/**
 * The default anon key: `role: "anon"`, expiring in 2100, signed with {@link defaultJwtSecret}.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultApiKey: string = signToken({ iss: "supabase-demo", role: "anon", exp: 4_102_444_800 })

/**
 * The default service-role key: `role: "service_role"`, expiring in 2100.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultServiceRoleKey: string = signToken({
  iss: "supabase-demo",
  role: "service_role",
  exp: 4_102_444_800
})

// -------------------------------------------------------------------------------------
// options
// -------------------------------------------------------------------------------------

/**
 * What a token may do on a private channel (the RLS policies on `realtime.messages`).
 *
 * @since 0.1.0
 * @category models
 */
export type Permissions = ServerModel.Permissions

/**
 * The private-channel policy: the permissions of a token's claims on a subtopic (the topic without
 * `realtime:`). Evaluated at join (read), on the first broadcast (write, cached), on each presence
 * call (write), after each `access_token` (read re-checked: a lost read permission shuts the channel
 * down) and for private HTTP broadcasts (write).
 *
 * @since 0.1.0
 * @category models
 */
export type Policy = ServerModel.Policy

/**
 * Limits, with the real server's defaults. Rates are counted in fixed one-second windows of the
 * server's `Clock` (the real server uses rolling averages), so a burst over a limit trips it at once.
 *
 * @since 0.1.0
 * @category models
 */
export interface Limits {
  /** Open sockets; past it: connect 429 `Too many connected users`. Default 200. */
  readonly maxConcurrentUsers: number
  /** Channels per socket; past it: join `ChannelRateLimitReached: Too many channels`. Default 100. */
  readonly maxChannelsPerClient: number
  /** Joins per second (server-wide); past it: `ClientJoinRateLimitReached` + socket close 1001. Default 100. */
  readonly maxJoinsPerSecond: number
  /** Client events and HTTP broadcasts per second; past it: `Too many messages per second` + close, HTTP 429. Default 100. */
  readonly maxEventsPerSecond: number
  /** Presence calls per second (server-wide); past it: `Too many presence messages per second`. Default 1000. */
  readonly maxPresenceEventsPerSecond: number
  /** Presence calls per channel within `clientPresenceWindow`; past it: `Client presence rate limit exceeded`. Default 5. */
  readonly clientPresenceMaxCalls: number
  /** Default 30 seconds. */
  readonly clientPresenceWindow: Duration.Input
  /** Broadcast / track payload size in bytes; past it: `payload_size_exceeded`, HTTP 422, `Track message size exceeded`. Default 3 000 500. */
  readonly maxPayloadBytes: number
}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultLimits: Limits = {
  maxConcurrentUsers: 200,
  maxChannelsPerClient: 100,
  maxJoinsPerSecond: 100,
  maxEventsPerSecond: 100,
  maxPresenceEventsPerSecond: 1000,
  clientPresenceMaxCalls: 5,
  clientPresenceWindow: Duration.seconds(30),
  maxPayloadBytes: 3_000_500
}

/**
 * The default policy: every permission granted. (A real project without policies on
 * `realtime.messages` denies private channels; pass a policy to test that.)
 *
 * @since 0.1.0
 * @category constants
 */
export const allowAll: Policy = () => ({
  broadcastRead: true,
  broadcastWrite: true,
  presenceRead: true,
  presenceWrite: true
})

/**
 * Server options. Everything has a default suited to tests.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** HS256/384/512 secret tokens are verified with. Default {@link defaultJwtSecret}. */
  readonly jwtSecret?: string | undefined
  /** The anon key handed out as `server.apiKey`. Default: an anon JWT signed with `jwtSecret`, expiring in 2100. */
  readonly apiKey?: string | undefined
  /**
   * Opaque `sb_…` keys the server accepts (as the API gateway does), with the role each stands for.
   * Default `{ sb_publishable_test: "anon", sb_secret_test: "service_role" }`. Other `sb_` keys are not
   * JWTs: `The token provided is not a valid JWT`.
   */
  readonly opaqueKeys?: Readonly<Record<string, string>> | undefined
  /** The serializer when the URL has no `vsn`. Default `"1.0.0"`, as Phoenix. */
  readonly vsnDefault?: ProtocolModel.Vsn | undefined
  /** Delay of join error replies. Default 0 (the real server: 5 seconds). */
  readonly joinErrorDelay?: Duration.Input | undefined
  /** Delay of handshake errors on the real listener. Default 0 (the real server: 2 seconds). */
  readonly connectErrorDelay?: Duration.Input | undefined
  /** A socket that sent nothing for this long is closed (1000). Default 60 seconds, as Phoenix; `false` disables. */
  readonly idleTimeout?: Duration.Input | false | undefined
  /** Longest interval of the channel token re-check (it also fires at the token's `exp`). Default 5 minutes. */
  readonly tokenCheckInterval?: Duration.Input | undefined
  /** Limits; unspecified ones keep {@link defaultLimits}. */
  readonly limits?: Partial<Limits> | undefined
  /** Private-channel policy. Default {@link allowAll}. */
  readonly policy?: Policy | undefined
  /** The tenant's `private_only` flag: public joins fail with `PrivateOnly`. Default false. */
  readonly privateOnly?: boolean | undefined
  /** The tenant's `presence_enabled` flag: every channel gets `presence_state`. Default false. */
  readonly presenceEnabled?: boolean | undefined
  /** Payload of `phx_error` when a channel crashes. Default `{ reason: "channel_crash" }` (Phoenix ≥ 1.8.10). */
  readonly crashPayload?: Readonly<Record<string, unknown>> | undefined
  /** Frames kept per connection for `received` / `sent` (older ones are dropped). Default 10 000. */
  readonly maxRecordedFrames?: number | undefined
  /** The in-memory endpoint `url` reports. Default `"ws://realtime.test/socket"`. */
  readonly memoryUrl?: string | undefined
}

/**
 * Options of the real listener.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListenOptions extends Options {
  /** Default 0 (any free port). */
  readonly port?: number | undefined
  /** Default `"127.0.0.1"`. */
  readonly host?: string | undefined
}

// -------------------------------------------------------------------------------------
// inspection models
// -------------------------------------------------------------------------------------

/**
 * A decoded frame, as the server received or sent it. `binary`: it was a binary frame (kind 3 from a
 * client, kind 4 to a client); `at`: the server's `Clock` time in milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export type RecordedFrame = ServerModel.RecordedFrame

/**
 * One socket.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionInfo {
  /** `"c1"`, `"c2"`, … in connection order. */
  readonly id: string
  readonly transport: "memory" | "ws"
  readonly url: string
  readonly path: string
  readonly vsn: ProtocolModel.Vsn
  /** The query parameters (`apikey`, `vsn`, `log_level`, …). */
  readonly params: Readonly<Record<string, string>>
  /** Request headers (lower-cased; in memory, the `headers` of the client options, if any). */
  readonly headers: Readonly<Record<string, string>>
  /** Claims of the connect-time key. */
  readonly claims: Readonly<Record<string, unknown>>
  readonly open: boolean
  readonly closeCode: number | undefined
  readonly closeReason: string | undefined
  readonly openedAt: number
  /** Joined topics. */
  readonly topics: ReadonlyArray<string>
  readonly heartbeatsPaused: boolean
}

/**
 * One joined channel.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChannelInfo {
  readonly connection: string
  readonly topic: string
  readonly subtopic: string
  readonly joinRef: string | null
  readonly private: boolean
  readonly ack: boolean
  readonly self: boolean
  readonly presenceEnabled: boolean
  readonly presenceKey: string
  /** The postgres_changes bindings with the ids the server gave them. */
  readonly postgresChanges: ReadonlyArray<{ readonly id: number; readonly params: Readonly<Record<string, unknown>> }>
  /** The bindings are subscribed (`Subscribed to PostgreSQL` was sent). */
  readonly postgresSubscribed: boolean
  readonly joinPayload: unknown
  /** Claims of the channel's current token. */
  readonly claims: Readonly<Record<string, unknown>>
  readonly permissions: Permissions
  /** The channel's tracked presence meta (with `phx_ref`), if any. */
  readonly tracked: Readonly<Record<string, unknown>> | undefined
}

/**
 * The server's presence table of a topic (`Phoenix.Presence` state): metas per key, each with its
 * `phx_ref`, as the server would send it in `presence_state`.
 *
 * @since 0.1.0
 * @category models
 */
export type PresenceTable = Readonly<
  Record<string, { readonly metas: ReadonlyArray<Readonly<Record<string, unknown>>> }>
>

/**
 * @since 0.1.0
 * @category models
 * @deprecated renamed `PresenceTable` (`Presence.PresenceState` is the client's synced state and
 * `Protocol.PresenceStatePayload` the wire Schema); this alias goes in the next release
 */
export type PresenceState = PresenceTable

/**
 * Counters since the server started.
 *
 * @since 0.1.0
 * @category models
 */
export type Stats = ServerModel.Stats

/**
 * Why a channel ended.
 *
 * @since 0.1.0
 * @category models
 */
export type ChannelCloseReason = ServerModel.ChannelCloseReason

/**
 * What happens on the server, in order (see `events`).
 *
 * @since 0.1.0
 * @category models
 */
export type ServerEvent = ServerModel.ServerEvent

/**
 * A row of the server's `realtime.messages`, written by `dbSend` (only messages from the database are
 * stored, and so replayable). Rows older than 72 hours are dropped, as the server's janitor does.
 *
 * @since 0.1.0
 * @category models
 */
export type StoredMessage = ServerModel.StoredMessage

/**
 * A view of the server's state, for assertions and `waitFor`. Read it synchronously: it reflects the
 * server at the time it was taken (the frame lists are live, append-only).
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerState {
  /** The server's `Clock` time in milliseconds. */
  readonly now: number
  /** Open sockets. */
  readonly connections: ReadonlyArray<ConnectionInfo>
  /** Recently closed sockets (the last 100). */
  readonly closedConnections: ReadonlyArray<ConnectionInfo>
  /** Every joined channel. */
  readonly channels: ReadonlyArray<ChannelInfo>
  readonly stats: Stats
  /** An open or closed socket by id. */
  readonly connection: (id: string) => ConnectionInfo | undefined
  /** Channels joined to a topic (`"room"` or `"realtime:room"`), public and private unless `private` is given. */
  readonly subscribers: (
    topic: string,
    options?: { readonly private?: boolean | undefined }
  ) => ReadonlyArray<ChannelInfo>
  /** The presence table of a topic (public unless `private: true`). */
  readonly presence: (topic: string, options?: { readonly private?: boolean | undefined }) => PresenceTable
  /** The payload of the last `phx_join` for a topic (any socket, accepted or not). */
  readonly lastJoinPayload: (topic: string) => unknown
  /** Rows of `realtime.messages` of a topic (`"room"` or `"realtime:room"`; all when omitted), oldest first. */
  readonly messages: (topic?: string) => ReadonlyArray<StoredMessage>
  /** Frames a socket sent to the server, decoded, in order. */
  readonly received: (connection: string) => ReadonlyArray<RecordedFrame>
  /** Frames the server sent to a socket, in order. */
  readonly sent: (connection: string) => ReadonlyArray<RecordedFrame>
}

// -------------------------------------------------------------------------------------
// inputs
// -------------------------------------------------------------------------------------

/**
 * A row change to deliver as `postgres_changes` (what the server's CDC would see after a commit).
 *
 * @since 0.1.0
 * @category models
 */
export interface ChangeInput {
  /** Default `"public"`. */
  readonly schema?: string | undefined
  readonly table: string
  /** Case-insensitive. */
  readonly type: "INSERT" | "UPDATE" | "DELETE" | "insert" | "update" | "delete"
  /** The new row (INSERT, UPDATE). */
  readonly record?: Readonly<Record<string, unknown>> | undefined
  /** The old row (UPDATE, DELETE; default `{}`). */
  readonly old_record?: Readonly<Record<string, unknown>> | undefined
  /**
   * Default: inferred from the row's values, as a Postgres table would most likely have them: an
   * integer within int4's range (±2^31) is `int4` (a JS number, so `{ total: 10 }` matches
   * `Schema.Number`), a larger one `int8` (a string with the client's default `int8:
   * "string"`), another number `float8`, a boolean `bool`, a string or null `text`, a `Date`
   * `timestamptz`, a flat array of one scalar kind `_int4` / `_int8` / `_float8` / `_bool` /
   * `_text`, anything else `jsonb`. Give `columns` to test other types (`numeric`, `uuid`, …).
   */
  readonly columns?: ReadonlyArray<{ readonly name: string; readonly type: string }> | undefined
  /** Default: the server's `Clock` time, ISO 8601. */
  readonly commit_timestamp?: string | undefined
  /** e.g. `["Error 401: Unauthorized"]`, `["Error 413: Payload Too Large"]`. Default `null`. */
  readonly errors?: ReadonlyArray<string> | null | undefined
}

/**
 * Which channels an operation applies to: all, or those of a socket and/or a topic.
 *
 * @since 0.1.0
 * @category models
 */
export interface Target {
  readonly connection?: string | undefined
  /** `"room"` or `"realtime:room"`. */
  readonly topic?: string | undefined
}

/**
 * An HTTP request to the broadcast API (`path` may carry a query string; a full URL also works).
 *
 * @since 0.1.0
 * @category models
 */
export type HttpRequest = ServerModel.HttpRequest

/**
 * @since 0.1.0
 * @category models
 */
export type HttpResponse = ServerModel.HttpResponse

// -------------------------------------------------------------------------------------
// errors
// -------------------------------------------------------------------------------------

/**
 * The real listener could not bind.
 *
 * @since 0.1.0
 * @category errors
 */
export class ListenError extends Schema.TaggedError<ListenError>()("ListenError", {
  host: Schema.String,
  port: Schema.Number,
  cause: Schema.Defect()
}) {
  /** @since 0.1.0 */
  override get message(): string {
    return `cannot listen on ${this.host}:${this.port}: ${
      this.cause instanceof Error ? this.cause.message : String(this.cause)
    }`
  }
}

// -------------------------------------------------------------------------------------
// service
// -------------------------------------------------------------------------------------

/**
 * The server, as a service.
 *
 * @since 0.1.0
 * @category models
 */
export interface Server {
  /**
   * The endpoint to give a client (it appends `/websocket`): `ws://127.0.0.1:<port>/socket` when
   * listening, else the in-memory `memoryUrl` (any URL with path `/socket/websocket` or
   * `/realtime/v1/websocket` reaches the in-memory server).
   */
  readonly url: string
  /** The HTTP base: `http://127.0.0.1:<port>` (the API is at `${httpUrl}/api/broadcast`), or the in-memory one. */
  readonly httpUrl: string
  /** The bound port, when listening. */
  readonly port: number | undefined
  /** A valid anon key (see `Options.apiKey`). */
  readonly apiKey: string
  /** A valid service-role key signed with the server's secret. */
  readonly serviceRoleKey: string
  readonly jwtSecret: string
  /** The in-memory server end, for `FakeSocket.makeConstructor` / `makeClass`. */
  readonly acceptor: FakeSocket.Acceptor
  /** A `Socket.WebSocketConstructor` connected to the server in memory. */
  readonly webSocketConstructor: FakeSocket.WebSocketFactory
  /** A `WebSocket` class connected to the server in memory: realtime-js's `transport` option. */
  readonly webSocketClass: new(url: string | URL, protocols?: string | Array<string>) => WebSocket
  /** A `fetch` answered by the server's HTTP API in memory: realtime-js's `fetch` option. */
  readonly fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>
  /** An `HttpClient` answered by the server's HTTP API in memory. */
  readonly httpClient: HttpClient.HttpClient
  /** The HTTP broadcast API. */
  readonly handleHttp: (request: HttpRequest) => Effect.Effect<HttpResponse>
  /** Signs a token with the server's secret; `expiresIn` (default 1 hour) counts from the server's `Clock`. */
  readonly makeToken: (options?: {
    readonly role?: string | undefined
    readonly expiresIn?: Duration.Input | undefined
    readonly claims?: Readonly<Record<string, unknown>> | undefined
  }) => Effect.Effect<string>

  // injection
  /** Delivers a row change to every channel with a matching binding; returns how many channels got it. */
  readonly emitChange: (change: ChangeInput) => Effect.Effect<number>
  /**
   * A broadcast from the database (`realtime.send` / `send_binary`): a row in `realtime.messages`
   * (see `messages`; private rows are replayed to joins asking for it), then kind 4 with meta `{id}`
   * to vsn 2.0.0, converted JSON (binary: nothing) to vsn 1.0.0. `private` defaults to `true`, as
   * `realtime.send`. An `id` already stored is not stored again: that is the row's broadcast arriving
   * late, and channels that replayed it don't get it twice. Returns how many channels got it.
   */
  readonly dbSend: (message: {
    readonly topic: string
    readonly event: string
    readonly payload: unknown
    readonly private?: boolean | undefined
    readonly id?: string | undefined
  }) => Effect.Effect<number>
  /** Pushes `[join_ref, null, topic, event, payload]` to the targeted channels. */
  readonly push: (target: Target, event: string, payload: unknown) => Effect.Effect<number>
  /** Pushes a `system` message `{extension, status, message, channel}` to the targeted channels. */
  readonly sendSystem: (
    target: Target,
    message: {
      readonly message: string
      readonly status?: "ok" | "error" | undefined
      readonly extension?: string | undefined
    }
  ) => Effect.Effect<number>

  // faults
  /** Closes sockets (all, or one) with `code` (default 1000) — or drops them without a close frame (`abrupt`: 1006). */
  readonly dropConnection: (options?: {
    readonly connection?: string | undefined
    readonly code?: number | undefined
    readonly reason?: string | undefined
    readonly abrupt?: boolean | undefined
  }) => Effect.Effect<number>
  /** Stops answering heartbeats (one socket, or all, present and future). */
  readonly pauseHeartbeats: (connection?: string) => Effect.Effect<void>
  /** Answers heartbeats again. */
  readonly resumeHeartbeats: (connection?: string) => Effect.Effect<void>
  /** The next `times` (default 1) joins (of `topic`, or any) fail with `reason` (after `joinErrorDelay`). */
  readonly rejectJoins: (options: {
    readonly reason: string
    readonly topic?: string | undefined
    readonly times?: number | undefined
  }) => Effect.Effect<void>
  /** The next `times` (default 1) joins (of `topic`, or any) are processed after `delay`. */
  readonly delayJoins: (options: {
    readonly delay: Duration.Input
    readonly topic?: string | undefined
    readonly times?: number | undefined
  }) => Effect.Effect<void>
  /** Forgets pending `rejectJoins` / `delayJoins`. */
  readonly clearJoinRules: Effect.Effect<void>
  /** Crashes channels: `phx_error` (payload `crashPayload`), channel gone. */
  readonly crashChannel: (target: Target) => Effect.Effect<number>
  /** Shuts channels down as the server does: `system` error `message`, then `phx_close`. */
  readonly shutdownChannel: (target: Target, message: string) => Effect.Effect<number>
  /** Refuses the next `count` connection attempts with an HTTP `status` (default 500) and `{"error": error}`. */
  readonly refuseConnections: (
    count: number,
    options?: { readonly status?: number | undefined; readonly error?: string | undefined }
  ) => Effect.Effect<void>
  /** Runs the token-expiry path now: `system` `Token has expired N seconds ago`, then `phx_close`. */
  readonly expireToken: (target?: Target) => Effect.Effect<number>
  /** Tenant drain: `system` `Server requested disconnect` on every channel, then every socket closed with 1012. */
  readonly disconnectAll: Effect.Effect<number>

  // inspection
  readonly state: Effect.Effect<ServerState>
  readonly connections: Effect.Effect<ReadonlyArray<ConnectionInfo>>
  readonly received: (connection: string) => Effect.Effect<ReadonlyArray<RecordedFrame>>
  readonly sent: (connection: string) => Effect.Effect<ReadonlyArray<RecordedFrame>>
  readonly subscribers: (
    topic: string,
    options?: { readonly private?: boolean | undefined }
  ) => Effect.Effect<ReadonlyArray<ChannelInfo>>
  readonly presence: (
    topic: string,
    options?: { readonly private?: boolean | undefined }
  ) => Effect.Effect<PresenceTable>
  readonly lastJoinPayload: (topic: string) => Effect.Effect<Option.Option<unknown>>
  /** Rows of `realtime.messages` of a topic (`"room"` or `"realtime:room"`; all when omitted), oldest first. */
  readonly messages: (topic?: string) => Effect.Effect<ReadonlyArray<StoredMessage>>
  readonly stats: Effect.Effect<Stats>
  /** Server events from the moment the stream starts. */
  readonly events: Stream.Stream<ServerEvent>
  /**
   * Waits until `f` returns something other than `undefined` for the server's state, and returns it.
   * Re-evaluated after every server event (no polling). Compose with `Effect.timeout` for a bound.
   */
  readonly waitFor: <A>(f: (state: ServerState) => A | undefined) => Effect.Effect<A>
  /** Waits until `predicate` holds for the server's state. */
  readonly waitUntil: (predicate: (state: ServerState) => boolean) => Effect.Effect<ServerState>
}

/**
 * The `RealtimeServer` service: a `Server`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RealtimeServer extends Server {}

/**
 * @since 0.1.0
 * @category tags
 */
export const RealtimeServer: Context.Service<RealtimeServer, RealtimeServer> = Context.Service<RealtimeServer>(
  "supabase-realtime-effect/testing/RealtimeServer"
)

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

const toMillis = (d: Duration.Input | undefined, fallback: number): number =>
  d === undefined ? fallback : Duration.toMillis(Duration.fromInputUnsafe(d))

const resolveConfig = (options: Options): Engine.Config => {
  const jwtSecret = options.jwtSecret ?? defaultJwtSecret
  const limits = { ...defaultLimits, ...options.limits }
  return {
    jwtSecret,
    apiKey: options.apiKey ??
      (jwtSecret === defaultJwtSecret
        ? defaultApiKey
        : Jwt.sign({ iss: "supabase-demo", role: "anon", exp: 4_102_444_800 }, jwtSecret)),
    opaqueKeys: options.opaqueKeys ?? { sb_publishable_test: "anon", sb_secret_test: "service_role" },
    vsnDefault: options.vsnDefault ?? "1.0.0",
    joinErrorDelayMillis: toMillis(options.joinErrorDelay, 0),
    connectErrorDelayMillis: toMillis(options.connectErrorDelay, 0),
    idleTimeoutMillis: options.idleTimeout === false ? undefined : toMillis(options.idleTimeout, 60_000),
    tokenCheckMillis: toMillis(options.tokenCheckInterval, 5 * 60_000),
    limits: { ...limits, clientPresenceWindowMillis: toMillis(limits.clientPresenceWindow, 30_000) },
    policy: options.policy ?? allowAll,
    privateOnly: options.privateOnly ?? false,
    presenceEnabled: options.presenceEnabled ?? false,
    crashPayload: options.crashPayload ?? { reason: "channel_crash" },
    maxRecordedFrames: options.maxRecordedFrames ?? 10_000
  }
}

const connectionInfo = (c: Engine.Connection): ConnectionInfo => ({
  id: c.id,
  transport: c.transport,
  url: c.handshake.url,
  path: c.handshake.path,
  vsn: c.handshake.vsn,
  params: c.handshake.params,
  headers: c.handshake.headers,
  claims: c.handshake.claims,
  open: c.open,
  closeCode: c.closeCode,
  closeReason: c.closeReason,
  openedAt: c.openedAt,
  topics: [...c.channels.keys()],
  heartbeatsPaused: c.heartbeatsPaused
})

const channelInfo = (ch: Engine.Channel): ChannelInfo => ({
  connection: ch.connection.id,
  topic: ch.topic,
  subtopic: ch.subtopic,
  joinRef: ch.joinRef,
  private: ch.isPrivate,
  ack: ch.config.ack,
  self: ch.config.self,
  presenceEnabled: ch.presenceEnabled,
  presenceKey: ch.presenceKey,
  postgresChanges: ch.bindings,
  postgresSubscribed: ch.subscriptions.length > 0,
  joinPayload: ch.joinPayload,
  claims: ch.claims,
  permissions: ch.permissions,
  tracked: ch.tracked?.meta
})

const snapshot = (engine: Engine.Engine): ServerState => {
  const channels = [...engine.channels()].map(channelInfo)
  return {
    now: engine.env.now(),
    connections: [...engine.connections.values()].map(connectionInfo),
    closedConnections: engine.closedConnections.map(connectionInfo),
    channels,
    stats: { ...engine.stats },
    connection: (id) => {
      const c = engine.findConnection(id)
      return c === undefined ? undefined : connectionInfo(c)
    },
    subscribers: (topic, options) => {
      const full = Topic.topicOf(topic)
      return channels.filter((ch) =>
        ch.topic === full && (options?.private === undefined || ch.private === options.private)
      )
    },
    presence: (topic, options) => engine.presenceStateOf(topic, options?.private === true),
    lastJoinPayload: (topic) => engine.lastJoinPayloads.get(Topic.topicOf(topic)),
    messages: (topic) => engine.messages(topic),
    received: (id) => engine.findConnection(id)?.received ?? [],
    sent: (id) => engine.findConnection(id)?.sent ?? []
  }
}

const requestBody = (
  request: HttpClientRequest.HttpClientRequest
): Uint8Array | undefined => {
  const body = request.body
  switch (body._tag) {
    case "Empty":
      return new Uint8Array(0)
    case "Uint8Array":
      return body.body
    case "Raw":
      return typeof body.body === "string"
        ? new TextEncoder().encode(body.body)
        : body.body instanceof Uint8Array
        ? body.body
        : undefined
    default:
      return undefined
  }
}

const build = (
  engine: Engine.Engine,
  pubsub: PubSub.PubSub<ServerEvent>,
  endpoints: { readonly url: string; readonly httpUrl: string; readonly port: number | undefined }
): Server => {
  const config = engine.config
  const acceptor: FakeSocket.Acceptor = (peer) => {
    if (engine.stopped) return { refuse: { status: 503, body: "server stopped" } }
    const handshake = engine.handshake(peer.url, peer.headers)
    if (handshake._tag === "Refuse") return { refuse: { status: handshake.status, body: handshake.body } }
    const connection = engine.open(
      { send: peer.send, close: (code, reason) => peer.close(code, reason), terminate: peer.terminate },
      handshake,
      "memory"
    )
    return {
      onMessage: (frame) => engine.onFrame(connection, frame),
      onClose: (code, reason) => engine.onClose(connection, code, reason)
    }
  }
  const handle = (request: HttpRequest): HttpResponse =>
    HttpApi.handle(engine, {
      method: request.method,
      path: request.path,
      headers: request.headers,
      body: HttpApi.bodyBytes(request.body)
    })
  const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init)
    const body = new Uint8Array(await request.arrayBuffer())
    const headers: Record<string, string> = {}
    request.headers.forEach((value, key) => {
      headers[key] = value
    })
    const url = new URL(request.url)
    return HttpApi.webResponse(handle({ method: request.method, path: url.pathname + url.search, headers, body }))
  }
  const httpClient = HttpClient.make((request, url) => {
    const body = requestBody(request)
    if (body === undefined) {
      return Effect.fail(
        new HttpClientError.HttpClientError({
          reason: new HttpClientError.EncodeError({
            request,
            description: "the in-memory RealtimeServer client supports byte and text bodies only"
          })
        })
      )
    }
    return Effect.sync(() =>
      HttpClientResponse.fromWeb(
        request,
        HttpApi.webResponse(handle({
          method: request.method,
          path: url.pathname + url.search,
          headers: request.headers,
          body
        }))
      )
    )
  })
  const withSync = <A>(f: () => A): Effect.Effect<A> => Effect.sync(f)
  const forChannels = (target: Target, f: (channel: Engine.Channel) => void) =>
    withSync(() => {
      const channels = engine.select(target)
      for (const channel of channels) f(channel)
      return channels.length
    })
  const waitFor = <A>(f: (state: ServerState) => A | undefined): Effect.Effect<A> =>
    Effect.scoped(
      Effect.gen(function*() {
        const subscription = yield* PubSub.subscribe(pubsub)
        while (true) {
          const result = f(snapshot(engine))
          if (result !== undefined) return result
          // waits for at least one event, then drains the ones already there
          yield* PubSub.takeAll(subscription)
        }
      })
    )
  return {
    url: endpoints.url,
    httpUrl: endpoints.httpUrl,
    port: endpoints.port,
    apiKey: config.apiKey,
    serviceRoleKey: config.jwtSecret === defaultJwtSecret
      ? defaultServiceRoleKey
      : Jwt.sign({ iss: "supabase-demo", role: "service_role", exp: 4_102_444_800 }, config.jwtSecret),
    jwtSecret: config.jwtSecret,
    acceptor,
    webSocketConstructor: FakeSocket.makeConstructor(acceptor),
    webSocketClass: FakeSocket.makeClass(acceptor),
    fetch,
    httpClient,
    handleHttp: (request) => withSync(() => handle(request)),
    makeToken: (options) =>
      withSync(() =>
        Jwt.sign(
          {
            ...options?.claims,
            role: options?.role ?? "authenticated",
            exp: Math.floor(
              (engine.env.now() + Duration.toMillis(Duration.fromInputUnsafe(options?.expiresIn ?? "1 hour"))) / 1000
            )
          },
          config.jwtSecret
        )
      ),

    emitChange: (change) =>
      withSync(() => {
        const type = change.type.toUpperCase() as Postgres.Change["type"]
        const record = type === "DELETE" ? undefined : change.record ?? {}
        const oldRecord = type === "INSERT" ? undefined : change.old_record ?? {}
        const row = record ?? oldRecord ?? {}
        const data: Postgres.Change = {
          schema: change.schema ?? "public",
          table: change.table,
          commit_timestamp: change.commit_timestamp ?? new Date(engine.env.now()).toISOString(),
          type,
          columns: change.columns ?? Object.keys(row).map((name) => ({ name, type: Postgres.inferType(row[name]) })),
          ...(record === undefined ? {} : { record }),
          ...(oldRecord === undefined ? {} : { old_record: oldRecord }),
          errors: change.errors ?? null
        }
        return engine.emitChange(data)
      }),
    dbSend: (message) =>
      withSync(() =>
        engine.dbSend({
          topic: message.topic,
          event: message.event,
          payload: message.payload,
          private: message.private ?? true,
          id: message.id
        })
      ),
    push: (target, event, payload) => forChannels(target, (channel) => engine.push(channel, event, payload)),
    sendSystem: (target, message) =>
      forChannels(
        target,
        (channel) => engine.system(channel, message.extension ?? "system", message.status ?? "ok", message.message)
      ),

    dropConnection: (options) =>
      withSync(() => {
        const connections = engine.selectConnections(options?.connection)
        for (const connection of connections) {
          if (options?.abrupt === true) engine.terminateConnection(connection)
          else engine.closeConnection(connection, options?.code ?? 1000, options?.reason ?? "")
        }
        return connections.length
      }),
    pauseHeartbeats: (connection) =>
      withSync(() => {
        if (connection === undefined) engine.heartbeatsPaused = true
        else for (const c of engine.selectConnections(connection)) c.heartbeatsPaused = true
      }),
    resumeHeartbeats: (connection) =>
      withSync(() => {
        if (connection === undefined) {
          engine.heartbeatsPaused = false
          for (const c of engine.connections.values()) c.heartbeatsPaused = false
        } else {
          for (const c of engine.selectConnections(connection)) c.heartbeatsPaused = false
        }
      }),
    rejectJoins: (options) => withSync(() => engine.addJoinRule(options.topic, options.times ?? 1, 0, options.reason)),
    delayJoins: (options) =>
      withSync(() =>
        engine.addJoinRule(
          options.topic,
          options.times ?? 1,
          Duration.toMillis(Duration.fromInputUnsafe(options.delay)),
          undefined
        )
      ),
    clearJoinRules: withSync(() => engine.clearJoinRules()),
    crashChannel: (target) => forChannels(target, (channel) => engine.crash(channel, config.crashPayload)),
    shutdownChannel: (target, message) => forChannels(target, (channel) => engine.shutdown(channel, message)),
    refuseConnections: (count, options) =>
      withSync(() =>
        engine.refuseConnections(count, options?.status ?? 500, options?.error ?? "Error connecting to Realtime")
      ),
    expireToken: (target) => forChannels(target ?? {}, (channel) => engine.expireToken(channel)),
    disconnectAll: withSync(() => {
      const connections = [...engine.connections.values()]
      for (const connection of connections) {
        for (const channel of connection.channels.values()) {
          engine.send(connection, {
            joinRef: null,
            ref: null,
            topic: channel.topic,
            event: "system",
            payload: { extension: "system", status: "ok", message: "Server requested disconnect" }
          })
        }
        engine.closeConnection(connection, 1012, "")
      }
      return connections.length
    }),

    state: withSync(() => snapshot(engine)),
    connections: withSync(() => [...engine.connections.values()].map(connectionInfo)),
    received: (connection) => withSync(() => [...(engine.findConnection(connection)?.received ?? [])]),
    sent: (connection) => withSync(() => [...(engine.findConnection(connection)?.sent ?? [])]),
    subscribers: (topic, options) => withSync(() => snapshot(engine).subscribers(topic, options)),
    presence: (topic, options) => withSync(() => engine.presenceStateOf(topic, options?.private === true)),
    lastJoinPayload: (topic) =>
      withSync(() => {
        const full = Topic.topicOf(topic)
        return engine.lastJoinPayloads.has(full) ? Option.some(engine.lastJoinPayloads.get(full)) : Option.none()
      }),
    messages: (topic) => withSync(() => engine.messages(topic)),
    stats: withSync(() => ({ ...engine.stats })),
    events: Stream.fromPubSub(pubsub),
    waitFor,
    waitUntil: (predicate) => waitFor((state) => predicate(state) ? state : undefined)
  }
}

const logLevels: Readonly<Record<"Debug" | "Info" | "Warning" | "Error", LogLevel.Severity>> = {
  Debug: "Debug",
  Info: "Info",
  Warning: "Warn",
  Error: "Error"
}

// The engine's environment: the `Clock` in context (so `TestClock` drives its timers), timers as
// fibers of a `FiberSet` (interrupted when the server's scope closes), logs through Effect's logger.
const makeEngine = Effect.fnUntraced(function*(options: Options) {
  const clock = yield* Clock.Clock
  const context = yield* Effect.context<never>()
  const fibers = yield* FiberSet.make()
  const runFork = yield* FiberSet.runtime(fibers)()
  const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<ServerEvent>(), PubSub.shutdown)
  const runSync = Effect.runSyncWith(context)
  const env: Engine.Env = {
    now: () => clock.currentTimeMillisUnsafe(),
    schedule: (millis, f) => {
      const fiber = runFork(
        Effect.andThen(
          Effect.sleep(Duration.millis(Math.max(0, millis))),
          Effect.sync(() => {
            try {
              f()
            } catch (cause) {
              env.log("Error", "unexpected error in a server timer", { cause: String(cause) })
            }
          })
        )
      )
      return () => fiber.interruptUnsafe()
    },
    log: (level, message, annotations) => {
      try {
        runSync(
          Effect.logWithLevel(logLevels[level])(message).pipe(
            Effect.annotateLogs({ module: "RealtimeServer", ...annotations })
          )
        )
      } catch {
        // logging never breaks the server
      }
    },
    publish: (event) => {
      PubSub.publishUnsafe(pubsub, event)
    }
  }
  const engine = new Engine.Engine(resolveConfig(options), env)
  yield* Effect.addFinalizer(() => Effect.sync(() => engine.stop()))
  return { engine, pubsub }
})

/**
 * An in-memory server, stopped (every socket closed with 1001) when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Server, never, Scope.Scope> =>
  Effect.map(makeEngine(options), ({ engine, pubsub }) => {
    const url = options.memoryUrl ?? "ws://realtime.test/socket"
    const http = new URL(url)
    return build(engine, pubsub, {
      url,
      httpUrl: `${http.protocol === "wss:" ? "https:" : "http:"}//${http.host}`,
      port: undefined
    })
  })

/**
 * A server listening on a real socket (default 127.0.0.1, any free port), also reachable in memory.
 * The listener closes, and every socket with it, when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeListen = (options: ListenOptions = {}): Effect.Effect<Server, ListenError, Scope.Scope> =>
  Effect.gen(function*() {
    const { engine, pubsub } = yield* makeEngine(options)
    const host = options.host ?? "127.0.0.1"
    const port = options.port ?? 0
    const listener = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          Listener.listen(engine, {
            host,
            port,
            webSocketServer: (options) => new WebSocketServer(options)
          }),
        catch: (cause) => new ListenError({ host, port, cause })
      }),
      (listener) => Effect.promise(() => listener.close())
    )
    const authority = host.includes(":") ? `[${host}]:${listener.port}` : `${host}:${listener.port}`
    return build(engine, pubsub, {
      url: `ws://${authority}/socket`,
      httpUrl: `http://${authority}`,
      port: listener.port
    })
  })

/**
 * The in-memory server as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<RealtimeServer> => Layer.effect(RealtimeServer, make(options))

/**
 * The server on a real socket (see `makeListen`) as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerListen = (options: ListenOptions = {}): Layer.Layer<RealtimeServer, ListenError> =>
  Layer.effect(RealtimeServer, makeListen(options))

/**
 * The in-memory server and a `Socket.WebSocketConstructor` connected to it: provide it in place of a
 * platform's constructor layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWebSocketConstructor = (
  options: Options = {}
): Layer.Layer<RealtimeServer | Socket.WebSocketConstructor> =>
  Layer.effectContext(
    Effect.map(
      make(options),
      (server) =>
        Context.make(RealtimeServer, server).pipe(Context.add(Socket.WebSocketConstructor, server.webSocketConstructor))
    )
  )

/**
 * An `HttpClient` answered in memory by the server's HTTP API (for the REST broadcast endpoints).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttpClient: Layer.Layer<HttpClient.HttpClient, never, RealtimeServer> = Layer.effect(
  HttpClient.HttpClient,
  Effect.map(RealtimeServer, (server) => server.httpClient)
)
