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
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import type * as Stream from "effect/Stream"
import type * as Changes from "../../../src/core/server/changes.js"
import * as ServerConfig from "../../../src/core/server/config.js"
import type * as Control from "../../../src/core/server/control.js"
import type * as Inspect from "../../../src/core/server/inspect.js"
import * as Keys from "../../../src/core/server/keys.js"
import type * as ServerModel from "../../../src/core/server/model.js"
import type * as FakeSocket from "./FakeSocket.js"
import * as Environment from "./internal/environment.js"
import * as internal from "./internal/server.js"

// -------------------------------------------------------------------------------------
// tokens
// -------------------------------------------------------------------------------------

/**
 * The JWT secret of the Supabase CLI's local stack, used when no `jwtSecret` is given.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultJwtSecret = Keys.defaultJwtSecret

/**
 * Claims of a test token. `role` and `exp` (seconds since the epoch) are what the server requires;
 * leave them out to test the `Fields \`role\` and \`exp\` are required in JWT` path.
 *
 * @since 0.1.0
 * @category models
 */
export type TokenClaims = Keys.TokenClaims

/**
 * Signs a test JWT (HS256) with `secret` (default {@link defaultJwtSecret}).
 *
 * @since 0.1.0
 * @category tokens
 */
export const signToken: (claims: TokenClaims, secret?: string) => string = Keys.signToken

/**
 * The default anon key: `role: "anon"`, expiring in 2100, signed with {@link defaultJwtSecret}.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultApiKey: string = Keys.defaultApiKey

/**
 * The default service-role key: `role: "service_role"`, expiring in 2100.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultServiceRoleKey: string = Keys.defaultServiceRoleKey

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
export type Limits = ServerConfig.Limits<Duration.Input>

/**
 * The real server's limits (see `Limits`).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultLimits: Limits = Environment.defaultLimits

/**
 * The default policy: every permission granted. (A real project without policies on
 * `realtime.messages` denies private channels; pass a policy to test that.)
 *
 * @since 0.1.0
 * @category constants
 */
export const allowAll: Policy = ServerConfig.allowAll

/**
 * Server options. Everything has a default suited to tests.
 *
 * @since 0.1.0
 * @category models
 */
export type Options = ServerConfig.Options<Duration.Input>

/**
 * Options of the real listener.
 *
 * @since 0.1.0
 * @category models
 */
export type ListenOptions = ServerConfig.ListenOptions<Duration.Input>

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
 * One socket (in memory, its `headers` are the `headers` of the client options, if any).
 *
 * @since 0.1.0
 * @category models
 */
export type ConnectionInfo = Inspect.ConnectionInfo

/**
 * One joined channel.
 *
 * @since 0.1.0
 * @category models
 */
export type ChannelInfo = Inspect.ChannelInfo

/**
 * The server's presence table of a topic (`Phoenix.Presence` state): metas per key, each with its
 * `phx_ref`, as the server would send it in `presence_state`.
 *
 * @since 0.1.0
 * @category models
 */
export type PresenceTable = Inspect.PresenceTable

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
export type ServerState = Inspect.ServerState

// -------------------------------------------------------------------------------------
// inputs
// -------------------------------------------------------------------------------------

/**
 * A row change to deliver as `postgres_changes` (what the server's CDC would see after a commit).
 *
 * @since 0.1.0
 * @category models
 */
export type ChangeInput = Changes.ChangeInput

/**
 * Which channels an operation applies to: all, or those of a socket and/or a topic.
 *
 * @since 0.1.0
 * @category models
 */
export type Target = Control.Target

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

/**
 * An in-memory server, stopped (every socket closed with 1001) when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Server, never, Scope.Scope> => internal.make(options)

/**
 * A server listening on a real socket (default 127.0.0.1, any free port), also reachable in memory.
 * The listener closes, and every socket with it, when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeListen = (options: ListenOptions = {}): Effect.Effect<Server, ListenError, Scope.Scope> =>
  internal.makeListen(options, (host, port, cause) => new ListenError({ host, port, cause }))

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
