/**
 * The socket loop: one long-lived fiber that connects, reads, heartbeats and reconnects on the
 * `Reconnect` schedule. The socket comes from `effect/socket`'s `Socket.WebSocketConstructor`
 * (swap it to change the WebSocket implementation, or to test against a fake one); its events are
 * read directly: every frame is decoded and routed synchronously in the socket's `message`
 * callback, with no Effect and no fiber per frame (a `Socket` reader hands out one pull at a time,
 * which is slower). It owns the socket-wide ref counter, the registry of pushes waiting for a
 * `phx_reply`, the bounded buffer of pushes made while disconnected, and the topic router.
 * Channels are built on top of it.
 *
 * This module is the service and its options; the parts are internal, one concern each
 * (`internal/transport/`: the shared state, the read path, the write path and its buffer, requests
 * and their deadlines, the heartbeat and the device's signals, the connection loop), over what both
 * editions share in the core (`core/connection/`: the URL and settings, how a connection ended, the
 * deadline list, the reply registry, the reconnect bookkeeping).
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as Socket from "effect/socket/Socket"
import * as Stream from "effect/Stream"
import type * as End from "../../src/core/connection/end.js"
import * as CoreOptions from "../../src/core/connection/options.js"
import * as Policy from "../../src/core/policy.js"
import type * as CoreResult from "../../src/core/result.js"
import * as Heartbeat from "./Heartbeat.js"
import { withExactPostgresNumbers } from "./internal/exactNumbers.js"
import * as HeartbeatLoop from "./internal/transport/heartbeat.js"
import * as Loop from "./internal/transport/loop.js"
import * as Metrics from "./internal/transport/metrics.js"
import * as Read from "./internal/transport/read.js"
import * as Requests from "./internal/transport/requests.js"
import * as State from "./internal/transport/state.js"
import * as Write from "./internal/transport/write.js"
import * as Network from "./Network.js"
import * as Protocol from "./Protocol.js"
import type { BufferFull, ProtocolError, PushTimeout, SocketClosed } from "./RealtimeError.js"
import { InvalidArgument } from "./RealtimeError.js"
import * as Reconnect from "./Reconnect.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("supabase-realtime-effect/Transport")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * The state of the connection.
 *
 * - `Connecting`: a socket is being opened (`attempt` 0 is the first, n the n-th reconnect).
 * - `Open`: connected; pushes are written at once.
 * - `Reconnecting`: the last connection ended or could not open, and the next attempt starts after
 *   `delay`. `reason` says what happened in words; `code` is the close code when the socket closed,
 *   `status` and `body` the HTTP answer when the server refused the upgrade.
 * - `Offline`: the device reports no network (a `Network` service is provided, as in the browser):
 *   no attempt is made, and none of the reconnect schedule is spent, until it reports the network
 *   back; then the client connects at once.
 * - `Closed`: not connected and not trying: before the first `connect`, after `disconnect`, when
 *   the reconnect schedule gave up, or when the server refused the upgrade for good (a 4xx other
 *   than 408 and 429: a bad key, a wrong path; `status` and `body` say which) until the next
 *   `connect`.
 *
 * @since 0.1.0
 * @category models
 */
export type ConnectionState = Data.TaggedEnum<{
  Connecting: { readonly attempt: number }
  Open: {}
  Reconnecting: {
    readonly attempt: number
    readonly delay: Duration.Duration
    readonly reason: string
    readonly code: number | undefined
    readonly status?: number | undefined
    readonly body?: string | undefined
  }
  Offline: { readonly reason: string }
  Closed: {
    readonly reason: string
    readonly code?: number | undefined
    readonly status?: number | undefined
    readonly body?: string | undefined
  }
}>

/**
 * Builds the states (`ConnectionState.Open()`, …) and matches them (`$is`, `$match`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const ConnectionState: Data.TaggedEnum.Constructor<ConnectionState> = State.ConnectionState

/**
 * A `phx_reply`: `status` is `"ok"` or `"error"` from the server.
 *
 * @since 0.1.0
 * @category models
 */
export interface Reply {
  readonly status: string
  readonly response: unknown
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Transport {
  readonly [TypeId]: TypeId
  /** The socket endpoint, without query string (safe to log). */
  readonly endpoint: string
  /** The protocol version spoken. */
  readonly vsn: Protocol.Vsn
  /** The current connection state. */
  readonly state: Effect.Effect<ConnectionState>
  /** The current connection state, then every change. */
  readonly stateChanges: Stream.Stream<ConnectionState>
  /** What happens to each heartbeat. Subscribe before the events you care about. */
  readonly heartbeats: Stream.Stream<Heartbeat.HeartbeatStatus>
  /** Starts the connection loop if it is not running. */
  readonly connect: Effect.Effect<void>
  /**
   * Closes the socket (code 1000 by default) and stops reconnecting. Pushes waiting for the socket
   * or for a reply fail with `SocketClosed`. No fiber or timer is left behind.
   */
  readonly disconnect: (options?: { readonly code?: number; readonly reason?: string }) => Effect.Effect<void>
  /** A fresh socket-wide ref. */
  readonly makeRef: () => string
  /**
   * Writes a message. Succeeds once the frame is written: at once when open, else when the buffer
   * is flushed on the next open. Fails with `BufferFull` when the buffer is at capacity. With
   * `buffer: false` it writes now or fails with `SocketClosed` (for messages that only make sense on
   * the current connection, such as `phx_leave`).
   */
  readonly push: (
    message: Protocol.Message,
    options?: { readonly buffer?: boolean | undefined }
  ) => Effect.Effect<void, BufferFull | ProtocolError | SocketClosed>
  /**
   * Writes a message (its `ref` must be set, see `makeRef`) and waits for the `phx_reply` with that
   * ref, within `timeout` (default: the transport's push timeout) counted from the call.
   */
  readonly request: (
    message: Protocol.Message,
    options?: { readonly timeout?: Duration.Input | undefined }
  ) => Effect.Effect<Reply, BufferFull | ProtocolError | SocketClosed | PushTimeout>
  /**
   * Routes the inbound messages of `topic` (other than replies to requests) to `handler`, for the
   * lifetime of the scope. The handler runs synchronously in the read path: it must not block.
   */
  readonly route: (
    topic: string,
    handler: (message: Protocol.Message) => void
  ) => Effect.Effect<void, InvalidArgument, Scope.Scope>
  /**
   * As `request`, with a callback instead of an Effect and no buffer: written now when the socket is
   * open, else `onDone` gets `SocketClosed` at once. `onDone` runs once: with the reply (matched by
   * ref, topic and join ref), `PushTimeout`, or `SocketClosed` when the connection ends first. The
   * returned function forgets the request (`onDone` is then never called).
   */
  readonly unsafeRequest: (
    message: Protocol.Message,
    timeout: Duration.Duration,
    onDone: (exit: Exit.Exit<Reply, SocketClosed | PushTimeout | ProtocolError>) => void
  ) => () => void
  /**
   * Writes a message now if the socket is open (never buffered, never awaited), else returns why
   * not: for messages that only make sense on the current connection, such as `phx_leave`.
   */
  readonly unsafePush: (message: Protocol.Message) => SocketClosed | ProtocolError | undefined
  /** Whether the socket is open now. */
  readonly unsafeIsOpen: () => boolean
  /**
   * Calls `listener` synchronously on every change of the connection state, until the returned
   * function is called (for the client's channels, which must see every change, in order).
   */
  readonly unsafeOnState: (listener: (state: ConnectionState) => void) => () => void
  /** As `route`, but the route lasts until the returned function is called (not tied to a scope). */
  readonly unsafeRoute: (
    topic: string,
    handler: (message: Protocol.Message) => void
  ) => Result.Result<() => void, InvalidArgument>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const Transport: Context.Service<Transport, Transport> = Context.Service<Transport>(
  "supabase-realtime-effect/Transport"
)

/**
 * Whether `u` is a `Transport`.
 *
 * @since 0.1.0
 * @category guards
 */
export const isTransport = (u: unknown): u is Transport => Predicate.hasProperty(u, TypeId)

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** A Supabase project URL (`https://<ref>.supabase.co`) or a Realtime endpoint (`wss://…/realtime/v1`). */
  readonly url: string
  /** The project's anon or publishable key: sent as the `apikey` query parameter. */
  readonly apiKey: string | Redacted.Redacted<string>
  /** Protocol version; default `"2.0.0"` (binary broadcasts). */
  readonly vsn?: Protocol.Vsn | undefined
  /** Server-side log level (`log_level` parameter). */
  readonly logLevel?: "info" | "warning" | "error" | undefined
  /** Extra query parameters. */
  readonly params?: Readonly<Record<string, string>> | undefined
  /** Default reply timeout of pushes; default 10 s. */
  readonly timeout?: Duration.Input | undefined
  /** How many pushes may wait for the socket while it is down; default 1024. */
  readonly bufferSize?: number | undefined
  /** How long to wait for a socket to open; default 10 s. */
  readonly openTimeout?: Duration.Input | undefined
  /** A custom frame codec (defaults to the one of `vsn`). */
  readonly serializer?: Protocol.Serializer | undefined
  /**
   * The largest inbound frame accepted, in bytes; default 8 MiB (the server's own limits are a few
   * MB). Checked before decoding: a larger frame is skipped and counted as bad (`FrameTooLarge`).
   * The Node socket enforces it while reading (`ws`'s `maxPayload`): it closes the connection with
   * 1009 ("frame too large" in the connection state) and reconnects.
   */
  readonly maxFrameBytes?: number | undefined
}

/**
 * The default of `Options.maxFrameBytes`: 8 MiB.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxFrameBytes: number = CoreOptions.DEFAULT_MAX_FRAME_BYTES

/**
 * The transport's metrics (global, prefixed `realtime_`): frames in/out, undecodable frames
 * skipped, frames for topics nobody listens to, reconnect attempts, heartbeat round trips.
 *
 * @since 0.1.0
 * @category metrics
 */
export const metrics: typeof Metrics.metrics = Metrics.metrics

/**
 * The HTTP answer to a refused upgrade. A WebSocket implementation that can see it (the Node one of
 * `./node`, the fake socket of `./testing`) sets it as `upgradeResponse` before its `error` event.
 *
 * @since 0.1.0
 * @category models
 */
export type UpgradeResponse = End.UpgradeResponse

/** The core's checks of the options, their error detail as an `InvalidArgument`. */
const checked = <A>(result: CoreResult.Result<A, string>): Result.Result<A, InvalidArgument> =>
  result.ok ? Result.succeed(result.value) : Result.fail(new InvalidArgument({ detail: result.error }))

const unwrap = (options: Options): CoreOptions.UrlOptions & Options => ({
  ...options,
  apiKey: Redacted.isRedacted(options.apiKey) ? Redacted.value(options.apiKey) : options.apiKey
})

/**
 * Builds the URL of one connection: `<endpoint>/websocket?apikey=…[&params][&log_level=…]&vsn=…`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const connectionUrl = (options: Options): Result.Result<string, InvalidArgument> =>
  checked(CoreOptions.connectionUrl(unwrap(options)))

/**
 * Builds a transport. `Heartbeat`, `Reconnect` and `Network` are used when provided, else their
 * defaults (and no network signals).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options: Options
) => Effect.Effect<Transport, InvalidArgument, Socket.WebSocketConstructor | Scope.Scope> = Effect.fn(
  "Transport.make"
)(function*(options: Options) {
  const settings = yield* Effect.fromResult(checked(CoreOptions.settings(unwrap(options))))
  const serializer = withExactPostgresNumbers(options.serializer ?? Protocol.serializer(settings.vsn))
  const defaultTimeout = Duration.fromInputUnsafe(options.timeout ?? "10 seconds")
  const openTimeout = Duration.fromInputUnsafe(options.openTimeout ?? "10 seconds")
  const heartbeat = Option.getOrElse(yield* Effect.serviceOption(Heartbeat.Heartbeat), () => Heartbeat.defaults)
  const heartbeatProblem = Policy.heartbeatProblem(
    Duration.toMillis(heartbeat.interval),
    Duration.toMillis(heartbeat.timeout)
  )
  if (heartbeatProblem !== undefined) return yield* new InvalidArgument({ detail: heartbeatProblem })
  const state = yield* State.make({
    ...settings,
    serializer,
    defaultTimeout,
    openTimeout,
    heartbeat,
    reconnect: Option.getOrElse(yield* Effect.serviceOption(Reconnect.Reconnect), () => Reconnect.defaults),
    network: Option.getOrUndefined(yield* Effect.serviceOption(Network.Network)),
    construct: yield* Socket.WebSocketConstructor,
    clock: yield* Clock.Clock,
    metricContext: yield* Effect.context<never>(),
    scope: yield* Effect.scope
  })
  const read = Read.make(state)
  const write = Write.make(state)
  const requests = Requests.make(state, write)
  const heartbeatLoop = yield* HeartbeatLoop.make(state, write)
  const { connect, disconnect } = yield* Loop.make(state, read, write, requests, heartbeatLoop)
  const unsafeRoute = read.unsafeRoute

  return Transport.of({
    [TypeId]: TypeId,
    endpoint: settings.endpoint.display,
    vsn: settings.vsn,
    state: Effect.sync(() => state.currentState),
    stateChanges: Stream.fromPubSub(state.stateHub),
    heartbeats: Stream.fromPubSub(state.heartbeatHub),
    connect,
    disconnect,
    makeRef: () => state.refs.next(),
    push: write.push,
    request: requests.request,
    unsafeRequest: requests.unsafeRequest,
    unsafePush: write.unsafePush,
    unsafeIsOpen: () => state.open,
    unsafeOnState: (listener) => {
      state.stateListeners.add(listener)
      return () => {
        state.stateListeners.delete(listener)
      }
    },
    route: (topic, handler) =>
      Effect.suspend(() => {
        const added = unsafeRoute(topic, handler)
        return Result.isFailure(added)
          ? Effect.fail(added.failure)
          : Effect.addFinalizer(() => Effect.sync(added.success))
      }),
    unsafeRoute
  })
})

/**
 * The transport as a layer (built by `make`; disconnected when the layer's scope closes).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Transport, InvalidArgument, Socket.WebSocketConstructor> =>
  Layer.effect(Transport, make(options))
