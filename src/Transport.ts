/**
 * The socket loop: one long-lived fiber that connects, reads, heartbeats and reconnects on the
 * `Reconnect` schedule, over `@effect/platform`'s `Socket`. It owns the socket-wide ref counter,
 * the registry of pushes waiting for a `phx_reply`, the bounded buffer of pushes made while
 * disconnected, and the topic router. Channels are built on top of it.
 *
 * @since 0.1.0
 */
import * as Socket from "@effect/platform/Socket"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberHandle from "effect/FiberHandle"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as PubSub from "effect/PubSub"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as Tracer from "effect/Tracer"
import * as Policy from "./core/policy.js"
import * as Heartbeat from "./Heartbeat.js"
import * as Backoff from "./internal/backoff.js"
import { parseEndpoint } from "./internal/endpoint.js"
import { withExactPostgresNumbers } from "./internal/exactNumbers.js"
import { Waiter } from "./internal/waiter.js"
import * as Network from "./Network.js"
import * as Protocol from "./Protocol.js"
import { BufferFull, InvalidArgument, ProtocolError, PushTimeout, SocketClosed } from "./RealtimeError.js"
import * as Reconnect from "./Reconnect.js"

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
 * @since 0.1.0
 * @category constructors
 */
export const ConnectionState = Data.taggedEnum<ConnectionState>()

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
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("supabase-realtime-effect/Transport")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

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
    options?: { readonly timeout?: Duration.DurationInput | undefined }
  ) => Effect.Effect<Reply, BufferFull | ProtocolError | SocketClosed | PushTimeout>
  /**
   * Routes the inbound messages of `topic` (other than replies to requests) to `handler`, for the
   * lifetime of the scope. The handler runs synchronously in the read loop: it must not block.
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
  ) => Either.Either<() => void, InvalidArgument>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const Transport: Context.Tag<Transport, Transport> = Context.GenericTag<Transport>(
  "supabase-realtime-effect/Transport"
)

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
  readonly timeout?: Duration.DurationInput | undefined
  /** How many pushes may wait for the socket while it is down; default 1024. */
  readonly bufferSize?: number | undefined
  /** How long to wait for a socket to open; default 10 s. */
  readonly openTimeout?: Duration.DurationInput | undefined
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
export const defaultMaxFrameBytes: number = 8 * 1024 * 1024

/**
 * The transport's metrics (global, prefixed `realtime_`): frames in/out, undecodable frames
 * skipped, frames for topics nobody listens to, reconnect attempts, heartbeat round trips.
 *
 * @since 0.1.0
 * @category metrics
 */
export const metrics = {
  framesIn: Metric.counter("realtime_frames_in", {
    description: "Frames received from the Realtime socket",
    incremental: true
  }),
  framesOut: Metric.counter("realtime_frames_out", {
    description: "Frames written to the Realtime socket",
    incremental: true
  }),
  framesBad: Metric.counter("realtime_frames_bad", {
    description: "Frames received that could not be decoded (skipped)",
    incremental: true
  }),
  framesUnrouted: Metric.counter("realtime_frames_unrouted", {
    description: "Frames received for a topic no channel listens to",
    incremental: true
  }),
  reconnects: Metric.counter("realtime_reconnects", {
    description: "Socket reconnect attempts",
    incremental: true
  }),
  heartbeatLatency: Metric.histogram(
    "realtime_heartbeat_latency_ms",
    MetricBoundaries.exponential({ start: 1, factor: 2, count: 16 }),
    "Heartbeat round trip in milliseconds"
  )
} as const

const { framesBad, framesIn, framesOut, framesUnrouted, heartbeatLatency, reconnects } = metrics

/**
 * A request waiting for its reply: completed once (by the reply, its timer or the end of the
 * connection), then handed to its waiter. Completing or forgetting it disarms its timer.
 */
class Pending extends Waiter<Reply, SocketClosed | PushTimeout> {
  written = false
  timer: Timer | undefined = undefined
  constructor(readonly topic: string, readonly joinRef: string | null) {
    super()
  }
  complete(exit: Exit.Exit<Reply, SocketClosed | PushTimeout>): void {
    if (this.timer !== undefined) this.timer.fire = undefined
    this.settle(exit)
  }
  override cancel(): void {
    super.cancel()
    if (this.timer !== undefined) this.timer.fire = undefined
  }
  override await(forget: () => void): Effect.Effect<Reply, SocketClosed | PushTimeout> {
    return super.await(() => {
      if (this.timer !== undefined) this.timer.fire = undefined
      forget()
    })
  }
}

/** A request's deadline; `fire` is cleared once the request completed (the timer is then skipped). */
interface Timer {
  readonly deadline: number
  fire: (() => void) | undefined
}

interface Buffered {
  readonly frame: Protocol.Frame
  readonly done: Deferred.Deferred<void, SocketClosed>
  readonly onWritten: (() => void) | undefined
  cancelled: boolean
}

/** What a socket said when it ended (filled from its own events). */
interface SocketFacts {
  code?: number
  closeReason?: string
  error?: string
  upgrade?: UpgradeResponse
}

/**
 * The HTTP answer to a refused upgrade. A WebSocket implementation that can see it (the Node one of
 * `./node`, the fake socket of `./testing`) sets it as `upgradeResponse` before its `error` event.
 *
 * @since 0.1.0
 * @category models
 */
export interface UpgradeResponse {
  readonly status: number
  readonly body: string
}

/** How a connection ended. */
interface End {
  readonly reason: string
  readonly code?: number | undefined
  readonly status?: number | undefined
  readonly body?: string | undefined
  /** The server will refuse again: stop until the next `connect`. */
  readonly permanent: boolean
  /** Our socket refused an inbound frame over `maxFrameBytes` (a bad frame, counted as such). */
  readonly frameTooLarge?: boolean | undefined
}

const errorMessage = (event: Event): string | undefined => {
  const e = event as { readonly message?: unknown; readonly error?: { readonly message?: unknown } }
  if (typeof e.message === "string" && e.message.length > 0) return e.message
  if (typeof e.error?.message === "string" && e.error.message.length > 0) return e.error.message
  return undefined
}

/** One turn of the event loop's I/O (what has arrived is read first); a macrotask elsewhere. */
const ioTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  if (typeof globalThis.setImmediate === "function") {
    const handle = globalThis.setImmediate(() => resume(Effect.void))
    return Effect.sync(() => globalThis.clearImmediate(handle))
  }
  const handle = setTimeout(() => resume(Effect.void), 0)
  return Effect.sync(() => clearTimeout(handle))
})

/** `ws`'s error when a message is over its `maxPayload`. */
const TOO_LARGE = /^Max payload size exceeded/

/** At most one log line a minute about undecodable frames (after the first). */
const BAD_FRAME_LOG_INTERVAL = 60_000

class HeartbeatTimeout extends Data.TaggedError("HeartbeatTimeout")<{ readonly ref: string }> {}

/**
 * Builds the URL of one connection: `<endpoint>/websocket?apikey=…[&params][&log_level=…]&vsn=…`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const connectionUrl = (options: Options): Either.Either<string, InvalidArgument> =>
  Either.flatMap(parseEndpoint(options.url), (endpoint) => {
    const apiKey = Redacted.isRedacted(options.apiKey) ? Redacted.value(options.apiKey) : options.apiKey
    if (typeof apiKey !== "string" || apiKey.trim() === "") {
      return Either.left(new InvalidArgument({ detail: "apiKey must not be empty or blank" }))
    }
    const query = new URLSearchParams()
    query.set("apikey", apiKey)
    for (const [key, value] of Object.entries(options.params ?? {})) query.set(key, value)
    if (options.logLevel) query.set("log_level", options.logLevel)
    query.set("vsn", options.vsn ?? "2.0.0")
    return Either.right(`${endpoint.socket}/websocket?${query.toString()}`)
  })

/**
 * Builds a transport. `Heartbeat` and `Reconnect` are used when provided, else their defaults.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<Transport, InvalidArgument, Socket.WebSocketConstructor | Scope.Scope> =>
  Effect.gen(function*() {
    const endpoint = yield* parseEndpoint(options.url)
    const url = yield* connectionUrl(options)
    const vsn = options.vsn ?? "2.0.0"
    if (vsn !== "1.0.0" && vsn !== "2.0.0") {
      return yield* new InvalidArgument({ detail: `unsupported protocol version '${String(vsn)}'` })
    }
    const bufferSize = options.bufferSize ?? 1024
    if (!Number.isInteger(bufferSize) || bufferSize < 0) {
      return yield* new InvalidArgument({ detail: `bufferSize must be a non-negative integer, got ${bufferSize}` })
    }
    const maxFrameBytes = options.maxFrameBytes ?? defaultMaxFrameBytes
    if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes <= 0) {
      return yield* new InvalidArgument({ detail: `maxFrameBytes must be a positive integer, got ${maxFrameBytes}` })
    }
    const serializer = withExactPostgresNumbers(options.serializer ?? Protocol.serializer(vsn))
    const defaultTimeout = Duration.decode(options.timeout ?? "10 seconds")
    const heartbeat = Option.getOrElse(yield* Effect.serviceOption(Heartbeat.Heartbeat), () => Heartbeat.defaults)
    const heartbeatProblem = Policy.heartbeatProblem(
      Duration.toMillis(heartbeat.interval),
      Duration.toMillis(heartbeat.timeout)
    )
    if (heartbeatProblem !== undefined) return yield* new InvalidArgument({ detail: heartbeatProblem })
    const reconnect = Option.getOrElse(yield* Effect.serviceOption(Reconnect.Reconnect), () => Reconnect.defaults)
    const network = Option.getOrUndefined(yield* Effect.serviceOption(Network.Network))
    const clock = yield* Effect.clock

    // Normalise what reaches the handler: a "blob" binaryType would be decoded asynchronously and
    // reorder binary frames against text frames (reference/effect-idioms.md §1.4).
    // Writes go straight to the current WebSocket when it is OPEN (a synchronous `send`), never
    // through the platform writer, whose latch would park a write made in the instant between the
    // socket closing and this loop noticing it.
    let ws: globalThis.WebSocket | undefined
    // What the current socket said when it ended: its close code and reason, its error, and the
    // HTTP answer to a refused upgrade where the WebSocket implementation exposes it (ours for Node
    // and the fake socket do; browsers never do).
    let ended: SocketFacts = {}
    const construct = yield* Socket.WebSocketConstructor
    const openTimeout = Duration.decode(options.openTimeout ?? "10 seconds")
    const socket = yield* Socket.makeWebSocket(url, { openTimeout, closeCodeIsError: () => true }).pipe(
      Effect.provideService(Socket.WebSocketConstructor, (url, protocols) => {
        const created = construct(url, protocols)
        if (created.binaryType === "blob") created.binaryType = "arraybuffer"
        ws = created
        const facts: SocketFacts = {}
        ended = facts
        created.addEventListener("error", (event: Event) => {
          const message = errorMessage(event)
          if (message !== undefined) facts.error ??= message
        })
        created.addEventListener("close", (event: CloseEvent) => {
          facts.code ??= event.code
          facts.closeReason ??= event.reason
        })
        const upgrade = () => {
          const refused = (created as { readonly upgradeResponse?: UpgradeResponse }).upgradeResponse
          if (refused !== undefined) facts.upgrade ??= refused
        }
        created.addEventListener("error", upgrade)
        created.addEventListener("close", upgrade)
        return created
      })
    )

    const state = yield* SubscriptionRef.make<ConnectionState>(ConnectionState.Closed({ reason: "not connected" }))
    const stateListeners = new Set<(state: ConnectionState) => void>()
    let currentState: ConnectionState = ConnectionState.Closed({ reason: "not connected" })
    const setState = (next: ConnectionState) =>
      Effect.zipRight(
        Effect.sync(() => {
          currentState = next
          for (const listener of stateListeners) listener(next)
        }),
        SubscriptionRef.set(state, next)
      )
    const heartbeatHub = yield* PubSub.unbounded<Heartbeat.HeartbeatStatus>()
    const routes = new Map<string, (message: Protocol.Message) => void>()
    const pending = new Map<string, Pending>()
    const buffer: Array<Buffered> = []
    let open = false
    let flushing = false
    let refCounter = 0
    let heartbeatRef: string | undefined
    let heartbeatReply: Deferred.Deferred<Reply> | undefined

    const makeRef = () => {
      refCounter = refCounter === Number.MAX_SAFE_INTEGER ? 1 : refCounter + 1
      return String(refCounter)
    }

    // Undecodable frames: every one is counted (`realtime_frames_bad`); the first is logged, and
    // those that follow within a minute (by the Clock) are logged as one summary at the minute's
    // end, so a flood of bad frames logs a line a minute, not a line a frame.
    const scope = yield* Effect.scope
    const badLog = {
      total: 0,
      skipped: 0,
      loggedAt: -Infinity,
      summary: false,
      last: undefined as ProtocolError | undefined
    }
    const badSummary = Effect.suspend(() => {
      const { last, skipped, total } = badLog
      badLog.summary = false
      badLog.skipped = 0
      badLog.loggedAt = clock.unsafeCurrentTimeMillis()
      return Effect.logWarning(`skipped ${skipped} more frames that could not be decoded`).pipe(
        Effect.annotateLogs({ skipped, total, reason: last?.reason ?? "none", detail: last?.detail ?? "" })
      )
    })
    const badFrame = (error: ProtocolError): Effect.Effect<void> | undefined => {
      framesBad.unsafeUpdate(1, [])
      badLog.total++
      const now = clock.unsafeCurrentTimeMillis()
      if (!badLog.summary && now - badLog.loggedAt >= BAD_FRAME_LOG_INTERVAL) {
        badLog.loggedAt = now
        return Effect.logWarning("skipped a frame that could not be decoded").pipe(
          Effect.annotateLogs({ reason: error.reason, detail: error.detail, total: badLog.total })
        )
      }
      badLog.skipped++
      badLog.last = error
      if (badLog.summary) return undefined
      badLog.summary = true
      const wait = Duration.millis(Math.max(0, badLog.loggedAt + BAD_FRAME_LOG_INTERVAL - now))
      return Effect.asVoid(Effect.forkIn(Effect.zipRight(Effect.sleep(wait), badSummary), scope))
    }

    // Frames are counted per batch (the frames of one read), not one metric update per frame.
    let framesInPending = 0
    const flushFramesIn = () => {
      framesIn.unsafeUpdate(framesInPending, [])
      framesInPending = 0
    }

    // The read path: synchronous, no allocation beyond the decoded message.
    const onFrame = (data: string | Uint8Array): Effect.Effect<void> | void => {
      if (framesInPending++ === 0) queueMicrotask(flushFramesIn)
      const frame = typeof data === "string" || data instanceof Uint8Array
        ? data
        : new Uint8Array(data as unknown as ArrayBuffer)
      // a text frame's UTF-8 size is at least its length: no need to encode it to know it is too large
      const size = typeof frame === "string" ? frame.length : frame.byteLength
      if (size > maxFrameBytes) {
        return badFrame(
          new ProtocolError({
            reason: "FrameTooLarge",
            detail: `a ${typeof frame === "string" ? "text" : "binary"} frame of ${
              typeof frame === "string" ? "at least " : ""
            }${size} bytes, over maxFrameBytes (${maxFrameBytes})`
          })
        )
      }
      const decoded = serializer.decode(frame)
      if (decoded._tag === "Left") return badFrame(decoded.left)
      const message = decoded.right
      if (message.event === "phx_reply" && message.ref !== null) {
        const payload = message.payload as { readonly status?: unknown; readonly response?: unknown } | null
        const reply: Reply = typeof payload === "object" && payload !== null && typeof payload.status === "string"
          ? { status: payload.status, response: payload.response }
          : { status: "error", response: payload }
        if (message.ref === heartbeatRef && heartbeatReply !== undefined) {
          heartbeatRef = undefined
          Deferred.unsafeDone(heartbeatReply, Exit.succeed(reply))
          return
        }
        const entry = pending.get(message.ref)
        // a reply is for a request of the same topic and join (a v1 frame carries no join ref)
        if (
          entry !== undefined && entry.topic === message.topic &&
          (message.joinRef === null || message.joinRef === entry.joinRef)
        ) {
          pending.delete(message.ref)
          entry.complete(Exit.succeed(reply))
          return
        }
      }
      const route = routes.get(message.topic)
      if (route !== undefined) {
        // a route's handler is user code (`route` is public): its throw must not reach the socket's
        // event handler (that would crash the process); the frame is dropped, loudly
        try {
          route(message)
        } catch (cause) {
          return Effect.logError("a route handler threw: the frame is dropped").pipe(
            Effect.annotateLogs({ topic: message.topic, event: message.event, cause: String(cause) })
          )
        }
      } else framesUnrouted.unsafeUpdate(1, [])
    }

    const writable = () => ws !== undefined && ws.readyState === 1

    /** Writes now, or returns why not. */
    const writeNow = (frame: Protocol.Frame): SocketClosed | undefined => {
      if (!writable()) return new SocketClosed({ reason: "not connected" })
      try {
        ws!.send(frame)
      } catch (cause) {
        return new SocketClosed({ reason: `write failed: ${cause instanceof Error ? cause.message : String(cause)}` })
      }
      framesOut.unsafeUpdate(1, [])
      return undefined
    }
    const writeFrame = (frame: Protocol.Frame): Effect.Effect<void, SocketClosed> => {
      const error = writeNow(frame)
      return error === undefined ? Effect.void : Effect.fail(error)
    }

    // Written in order, one at a time: if the socket dies mid-flush, what is left stays buffered.
    const flush = Effect.gen(function*() {
      flushing = true
      while (buffer.length > 0) {
        const entry = buffer[0]!
        if (!entry.cancelled) {
          const written = yield* Effect.either(writeFrame(entry.frame))
          if (written._tag === "Left") return
          entry.onWritten?.()
          Deferred.unsafeDone(entry.done, Exit.void)
        }
        buffer.shift()
      }
    }).pipe(Effect.ensuring(Effect.sync(() => {
      flushing = false
    })))

    const enqueue = (
      frame: Protocol.Frame,
      message: Protocol.Message,
      onWritten: (() => void) | undefined,
      canBuffer = true
    ): Effect.Effect<void, BufferFull | SocketClosed> =>
      Effect.suspend((): Effect.Effect<void, BufferFull | SocketClosed> => {
        if (open && !flushing && writable()) {
          onWritten?.()
          return writeFrame(frame)
        }
        if (!canBuffer) return Effect.fail(new SocketClosed({ reason: "not connected" }))
        if (buffer.length >= bufferSize) {
          return Effect.fail(new BufferFull({ topic: message.topic, event: message.event, capacity: bufferSize }))
        }
        const entry: Buffered = {
          frame,
          done: Deferred.unsafeMake<void, SocketClosed>(FiberId.none),
          onWritten,
          cancelled: false
        }
        buffer.push(entry)
        return Deferred.await(entry.done).pipe(Effect.onInterrupt(() =>
          Effect.sync(() => {
            entry.cancelled = true
          })
        ))
      })

    const push = (
      message: Protocol.Message,
      pushOptions?: { readonly buffer?: boolean | undefined }
    ): Effect.Effect<void, BufferFull | ProtocolError | SocketClosed> =>
      Effect.suspend((): Effect.Effect<void, BufferFull | ProtocolError | SocketClosed> => {
        const encoded = serializer.encode(message)
        return encoded._tag === "Left"
          ? Effect.fail(encoded.left)
          : enqueue(encoded.right, message, undefined, pushOptions?.buffer ?? true)
      })

    // Timeouts of requests written on the open connection: one fiber of the connection sleeps (on
    // the Effect clock) until the earliest deadline, so such a request costs no fiber and no timer
    // of its own. Deadlines are kept sorted; with one timeout for every request a new one goes at the
    // end and the sleeper is not woken. (When the connection ends, its requests fail anyway.)
    const timers: Array<Timer> = []
    let timerWake: Deferred.Deferred<void> | undefined
    let sleepingUntil = Infinity

    const addTimer = (deadline: number, fire: () => void): Timer => {
      const timer: Timer = { deadline, fire }
      let i = timers.length
      while (i > 0 && timers[i - 1]!.deadline > deadline) i--
      if (i === timers.length) timers.push(timer)
      else timers.splice(i, 0, timer)
      if (deadline < sleepingUntil && timerWake !== undefined) {
        const wake = timerWake
        timerWake = undefined
        Deferred.unsafeDone(wake, Exit.void)
      }
      return timer
    }

    const timerLoop: Effect.Effect<never> = Effect.gen(function*() {
      // what is left from the previous connection has completed (failWritten)
      const stale = timers.findIndex((timer) => timer.fire !== undefined)
      timers.splice(0, stale < 0 ? timers.length : stale)
      while (true) {
        const now = clock.unsafeCurrentTimeMillis()
        let expired = 0
        while (
          expired < timers.length && (timers[expired]!.fire === undefined || timers[expired]!.deadline <= now)
        ) expired++
        const due = timers.splice(0, expired)
        // A timer can fire before the reply that beat it is read (the event loop was blocked: Node
        // runs timers before I/O): read what has arrived first, then fire what is still waiting.
        if (due.some((timer) => timer.fire !== undefined)) yield* ioTurn
        for (const timer of due) {
          const fire = timer.fire
          timer.fire = undefined
          fire?.()
        }
        const wake = Deferred.unsafeMake<void>(FiberId.none)
        timerWake = wake
        if (timers.length === 0) {
          sleepingUntil = Infinity
          yield* Deferred.await(wake)
        } else {
          sleepingUntil = timers[0]!.deadline
          yield* Effect.raceFirst(Effect.sleep(Duration.millis(sleepingUntil - now)), Deferred.await(wake))
        }
        timerWake = undefined
      }
    })

    // On an open connection: written now, then one wait on the reply, completed by the reply, the
    // connection's timer or the end of the connection. Otherwise buffered until the next open, with
    // a timeout of its own (a request that times out while buffered is never sent).
    const request = (
      message: Protocol.Message,
      requestOptions?: { readonly timeout?: Duration.DurationInput | undefined }
    ): Effect.Effect<Reply, BufferFull | ProtocolError | SocketClosed | PushTimeout> =>
      Effect.suspend((): Effect.Effect<Reply, BufferFull | ProtocolError | SocketClosed | PushTimeout> => {
        const ref = message.ref
        if (ref === null) return Effect.die(new Error("Transport.request: the message has no ref"))
        const encoded = serializer.encode(message)
        if (encoded._tag === "Left") return Effect.fail(encoded.left)
        const timeout = requestOptions?.timeout === undefined ? defaultTimeout : Duration.decode(requestOptions.timeout)
        const timeoutMillis = Duration.toMillis(timeout)
        const entry = new Pending(message.topic, message.joinRef)
        pending.set(ref, entry)
        const forget = () => {
          if (pending.get(ref) === entry) pending.delete(ref)
        }
        if (open && !flushing && writable()) {
          const error = writeNow(encoded.right)
          if (error !== undefined) {
            forget()
            return Effect.fail(error)
          }
          entry.written = true
          entry.timer = addTimer(clock.unsafeCurrentTimeMillis() + timeoutMillis, () => {
            forget()
            entry.complete(Exit.fail(new PushTimeout({ topic: message.topic, event: message.event, timeoutMillis })))
          })
          return entry.await(forget)
        }
        return enqueue(encoded.right, message, () => {
          entry.written = true
        }).pipe(
          Effect.zipRight(entry.await(forget)),
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () => new PushTimeout({ topic: message.topic, event: message.event, timeoutMillis })
          }),
          Effect.ensuring(Effect.sync(forget))
        )
      })

    const unsafeRequest = (
      message: Protocol.Message,
      timeout: Duration.Duration,
      onDone: (exit: Exit.Exit<Reply, SocketClosed | PushTimeout | ProtocolError>) => void
    ): () => void => {
      const ref = message.ref
      if (ref === null) throw new Error("Transport.unsafeRequest: the message has no ref")
      const encoded = serializer.encode(message)
      if (encoded._tag === "Left") {
        onDone(Exit.fail(encoded.left))
        return () => {}
      }
      const error = open && !flushing ? writeNow(encoded.right) : new SocketClosed({ reason: "not connected" })
      if (error !== undefined) {
        onDone(Exit.fail(error))
        return () => {}
      }
      const entry = new Pending(message.topic, message.joinRef)
      pending.set(ref, entry)
      entry.written = true
      const timeoutMillis = Duration.toMillis(timeout)
      entry.timer = addTimer(clock.unsafeCurrentTimeMillis() + timeoutMillis, () => {
        if (pending.get(ref) === entry) pending.delete(ref)
        entry.complete(Exit.fail(new PushTimeout({ topic: message.topic, event: message.event, timeoutMillis })))
      })
      entry.listen(onDone)
      return () => {
        entry.cancel()
        if (pending.get(ref) === entry) pending.delete(ref)
      }
    }

    // Replies to frames written on a connection that ended will never come.
    const failWritten = (error: SocketClosed) => {
      for (const [ref, entry] of pending) {
        if (entry.written) {
          pending.delete(ref)
          entry.complete(Exit.fail(error))
        }
      }
    }
    const failAll = (error: SocketClosed) => {
      for (const entry of pending.values()) entry.complete(Exit.fail(error))
      pending.clear()
      for (const entry of buffer.splice(0)) Deferred.unsafeDone(entry.done, Exit.fail(error))
    }

    // The device's signals (when a `Network` is provided): the network or the page came back. It
    // ends a reconnect backoff or an offline wait at once, and makes an open socket send its
    // heartbeat now (a socket may have died while the page was frozen or the network away).
    let wake: (() => void) | undefined
    // when the last connection attempt began
    let attemptedAt = 0
    const woken = Effect.async<void>((resume) => {
      wake = () => {
        wake = undefined
        resume(Effect.void)
      }
      return Effect.sync(() => {
        wake = undefined
      })
    })
    if (network !== undefined) {
      const unsubscribe = network.unsafeSubscribe((signal) => {
        if (signal._tag === "Online") return wake?.()
        // a page that comes back ends a backoff at most once a second (switching tabs during an
        // outage must not storm the server); an open socket is probed at once
        if (signal._tag === "Resumed" && (open || clock.unsafeCurrentTimeMillis() - attemptedAt >= 1_000)) wake?.()
      })
      yield* Effect.addFinalizer(() => Effect.sync(unsubscribe))
    }
    // waits for the network, checking it again as the wait is registered (a signal in between is
    // not lost)
    const online = (network: Network.Network): Effect.Effect<void> =>
      Effect.async<void>((resume) => {
        const check = () => {
          if (!network.unsafeIsOnline()) return false
          wake = undefined
          resume(Effect.void)
          return true
        }
        if (check()) return
        wake = () => {
          check()
        }
        return Effect.sync(() => {
          wake = undefined
        })
      })
    const sleepUnlessWoken = (duration: Duration.Duration) =>
      network === undefined ? Effect.sleep(duration) : Effect.raceFirst(Effect.sleep(duration), woken)

    const heartbeatLoop: Effect.Effect<never, HeartbeatTimeout> = Effect.gen(function*() {
      yield* sleepUnlessWoken(heartbeat.interval)
      const ref = makeRef()
      const reply = Deferred.unsafeMake<Reply>(FiberId.none)
      heartbeatRef = ref
      heartbeatReply = reply
      const sentAt = clock.unsafeCurrentTimeMillis()
      const encoded = serializer.encode({
        joinRef: null,
        ref,
        topic: Protocol.PHOENIX_TOPIC,
        event: "heartbeat",
        payload: {}
      })
      if (encoded._tag === "Right") writeNow(encoded.right)
      yield* PubSub.publish(heartbeatHub, Heartbeat.HeartbeatStatus.Sent({ ref }))
      let answer = yield* Deferred.await(reply).pipe(Effect.timeoutOption(heartbeat.timeout))
      // the reply may have arrived while the event loop was blocked: read it before giving up
      if (Option.isNone(answer)) {
        yield* ioTurn
        answer = yield* Deferred.poll(reply).pipe(Effect.flatMap(Option.match({
          onNone: () => Effect.succeedNone,
          onSome: Effect.asSome
        })))
      }
      if (Option.isNone(answer)) {
        heartbeatRef = undefined
        yield* PubSub.publish(heartbeatHub, Heartbeat.HeartbeatStatus.Timeout({ ref }))
        return yield* new HeartbeatTimeout({ ref })
      }
      const latency = Duration.millis(clock.unsafeCurrentTimeMillis() - sentAt)
      heartbeatLatency.unsafeUpdate(Duration.toMillis(latency), [])
      yield* PubSub.publish(
        heartbeatHub,
        answer.value.status === "ok"
          ? Heartbeat.HeartbeatStatus.Ok({ ref, latency })
          : Heartbeat.HeartbeatStatus.Error({ ref, latency, response: answer.value.response })
      )
    }).pipe(Effect.forever)

    const describeEnd = (exit: Exit.Exit<unknown, unknown>, facts: SocketFacts): End => {
      const failure = Exit.isSuccess(exit) ? undefined : Option.getOrUndefined(Cause.failureOption(exit.cause))
      if (failure instanceof HeartbeatTimeout) return { reason: "heartbeat timeout", permanent: false }
      const upgrade = facts.upgrade
      if (upgrade !== undefined) {
        const status = upgrade.status
        return {
          reason: `upgrade refused: HTTP ${status}${upgrade.body.length > 0 ? ` ${upgrade.body}` : ""}`,
          status,
          body: upgrade.body,
          // a 4xx will be answered the same way again (bad key, wrong path); 408 and 429 will not
          permanent: status >= 400 && status < 500 && status !== 408 && status !== 429
        }
      }
      // ws refused a message over its maxPayload (our maxFrameBytes) while reading it: it sends a
      // 1009 close and fails the socket, which then ends with an error rather than a close code
      if (facts.error !== undefined && TOO_LARGE.test(facts.error)) {
        return {
          reason: `frame too large (1009: over maxFrameBytes, ${maxFrameBytes} bytes)`,
          code: 1009,
          permanent: false,
          frameTooLarge: true
        }
      }
      if (Socket.isSocketError(failure) && failure.reason === "OpenTimeout") {
        return { reason: `no answer to the upgrade within ${Duration.toMillis(openTimeout)} ms`, permanent: false }
      }
      const code = facts.code ?? (Socket.isSocketError(failure) && failure.reason === "Close"
        ? (failure as Socket.SocketCloseError).code
        : undefined)
      const closeReason = facts.closeReason ?? (Socket.isSocketError(failure) && failure.reason === "Close"
        ? (failure as Socket.SocketCloseError).closeReason
        : undefined)
      const said = closeReason ? closeReason : facts.error
      if (code !== undefined) {
        const what = code === 1000
          ? "closed by the server"
          : code === 1006
          ? "connection lost"
          : code === 1009
          ? "frame too large"
          : "closed"
        return { reason: `${what} (${code}${said ? `: ${said}` : ""})`, code, permanent: false }
      }
      if (Socket.isSocketError(failure) && failure.reason === "Open") {
        return { reason: `connection failed${said ? `: ${said}` : ""}`, permanent: false }
      }
      return { reason: said ? `connection lost: ${said}` : "connection lost", permanent: false }
    }

    const connection = (backoff: Backoff.Backoff) =>
      Effect.suspend(() => {
        const opened = Deferred.unsafeMake<void>(FiberId.none)
        return socket.runRaw(onFrame, {
          onOpen: Effect.gen(function*() {
            backoff.reset()
            yield* flush
            open = true
            Deferred.unsafeDone(opened, Exit.void)
            yield* setState(ConnectionState.Open())
            yield* Effect.logDebug("socket open")
          })
        }).pipe(
          // the heartbeat and the request timers start with the connection; a heartbeat timeout ends it
          Effect.raceFirst(Effect.zipRight(Deferred.await(opened), Effect.raceFirst(heartbeatLoop, timerLoop))),
          Effect.ensuring(Effect.sync(() => {
            open = false
            heartbeatRef = undefined
          }))
        )
      })

    // The reconnect backoff starts over only after a connection held for a heartbeat interval: a
    // server that accepts the socket and closes it at once must not be reconnected to every second.
    const stableMillis = Duration.toMillis(heartbeat.interval)
    const loop = Effect.gen(function*() {
      const backoff = Backoff.make(reconnect.reconnect)
      let attempt = 0
      while (true) {
        if (network !== undefined && !network.unsafeIsOnline()) {
          // no attempt while the device says there is no network: wait for it, then start over
          yield* setState(ConnectionState.Offline({ reason: "the device reports no network" }))
          yield* Effect.logInfo("offline: waiting for the network")
          yield* online(network)
          backoff.reset()
          if (attempt > 0) attempt = 1
        }
        attemptedAt = clock.unsafeCurrentTimeMillis()
        yield* setState(ConnectionState.Connecting({ attempt }))
        let openedAt: number | undefined
        const exit = yield* Effect.exit(connection({
          next: backoff.next,
          reset: () => {
            openedAt = clock.unsafeCurrentTimeMillis()
          }
        }))
        const end = describeEnd(exit, ended)
        const { body, code, reason, status } = end
        if (end.frameTooLarge) {
          // the refused frame is a bad frame like any other: counted and logged (throttled)
          const counted = badFrame(
            new ProtocolError({
              reason: "FrameTooLarge",
              detail: `the socket refused a frame over maxFrameBytes (${maxFrameBytes}) and closed with 1009`
            })
          )
          if (counted !== undefined) yield* counted
        }
        failWritten(new SocketClosed({ reason, code, status, body }))
        if (openedAt !== undefined) yield* PubSub.publish(heartbeatHub, Heartbeat.HeartbeatStatus.Disconnected())
        if (openedAt !== undefined && clock.unsafeCurrentTimeMillis() - openedAt >= stableMillis) {
          backoff.reset()
          attempt = 1
        } else attempt++
        if (end.permanent) {
          failAll(new SocketClosed({ reason, code, status, body }))
          yield* setState(ConnectionState.Closed({ reason, code, status, body }))
          yield* Effect.logError("the server refused the connection; not reconnecting until connect").pipe(
            Effect.annotateLogs({ reason, status: status ?? "none" })
          )
          return
        }
        // the network went away: the failure says nothing about the server, wait for the network
        if (network !== undefined && !network.unsafeIsOnline()) continue
        const delay = yield* backoff.next(exit)
        if (Option.isNone(delay)) {
          const gaveUp = `gave up reconnecting after ${attempt} attempts: ${reason}`
          failAll(new SocketClosed({ reason: gaveUp, code, status, body }))
          yield* setState(ConnectionState.Closed({ reason: gaveUp, code, status, body }))
          return
        }
        reconnects.unsafeUpdate(1, [])
        yield* setState(ConnectionState.Reconnecting({ attempt, delay: delay.value, reason, code, status, body }))
        yield* Effect.logWarning("socket closed, reconnecting").pipe(
          Effect.annotateLogs({ attempt, reason, code: code ?? "none", delayMs: Duration.toMillis(delay.value) })
        )
        yield* sleepUnlessWoken(delay.value)
      }
    }).pipe(Effect.annotateLogs({ module: "Transport", endpoint: endpoint.display }))

    const handle = yield* FiberHandle.make<void, never>()

    const unsafeRoute = (
      topic: string,
      handler: (message: Protocol.Message) => void
    ): Either.Either<() => void, InvalidArgument> => {
      if (routes.has(topic)) {
        return Either.left(new InvalidArgument({ detail: `topic '${topic}' already has a route on this socket` }))
      }
      routes.set(topic, handler)
      return Either.right(() => {
        if (routes.get(topic) === handler) routes.delete(topic)
      })
    }

    const disconnect = (disconnectOptions?: { readonly code?: number; readonly reason?: string }) =>
      Effect.gen(function*() {
        const reason = disconnectOptions?.reason ?? "disconnected"
        if (open && writable()) ws!.close(disconnectOptions?.code ?? 1000, reason)
        yield* FiberHandle.clear(handle)
        open = false
        failAll(new SocketClosed({ reason }))
        yield* setState(ConnectionState.Closed({ reason }))
      })

    yield* Effect.addFinalizer(() => disconnect({ reason: "transport closed" }))

    return Transport.of({
      [TypeId]: TypeId,
      endpoint: endpoint.display,
      vsn,
      state: Effect.sync(() => currentState),
      stateChanges: state.changes,
      heartbeats: Stream.fromPubSub(heartbeatHub),
      // the connection loop outlives whoever connected: it is not a child of their span
      connect: FiberHandle.run(handle, Effect.mapInputContext(loop, Context.omit(Tracer.ParentSpan)<never>), {
        onlyIfMissing: true
      }).pipe(Effect.asVoid),
      disconnect,
      makeRef,
      push,
      request,
      unsafeRequest,
      unsafePush: (message) => {
        const encoded = serializer.encode(message)
        if (encoded._tag === "Left") return encoded.left
        return open && !flushing ? writeNow(encoded.right) : new SocketClosed({ reason: "not connected" })
      },
      unsafeIsOpen: () => open,
      unsafeOnState: (listener) => {
        stateListeners.add(listener)
        return () => {
          stateListeners.delete(listener)
        }
      },
      route: (topic, handler) =>
        Effect.suspend(() => {
          const added = unsafeRoute(topic, handler)
          return Either.isLeft(added) ? Effect.fail(added.left) : Effect.addFinalizer(() => Effect.sync(added.right))
        }),
      unsafeRoute
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Transport, InvalidArgument, Socket.WebSocketConstructor> =>
  Layer.scoped(Transport, make(options))

/**
 * Whether a value is the socket transport built by this module.
 *
 * @since 0.1.0
 * @category guards
 */
export const isTransport = (u: unknown): u is Transport => Predicate.hasProperty(u, TypeId)
