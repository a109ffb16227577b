/**
 * An in-memory WebSocket. `FakeWebSocket` has the surface of the WHATWG `WebSocket` (a superset of
 * what Effect's `Socket.WebSocketLike` needs, and what realtime-js's `transport` uses), and its far
 * end is whatever `Acceptor` you plug in: the queue-driven `FakeServer` of this module (tests that
 * drive the wire frame by frame), or the in-process Realtime server of `RealtimeServer`. No network,
 * and no timers: frames are delivered in order on the microtask queue, so it works under `TestClock`
 * (a frame, its answer and the fibers they resume run before `TestClock.adjust` wakes the next sleep).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Socket from "effect/socket/Socket"
import type * as Protocol from "../Protocol.js"

/**
 * A frame on the wire: text, or binary bytes.
 *
 * @since 0.1.0
 * @category models
 * @deprecated the same type as `Protocol.Frame`, which is the one to use; this alias goes in the next
 * release
 */
export type Frame = Protocol.Frame

/**
 * What `Socket.WebSocketConstructor` provides: a function from URL (and protocols, or Node-style
 * client options with handshake headers) to a WebSocket. Here it returns the fake, which satisfies
 * `Socket.WebSocketLike` and also has the DOM surface (`onopen`, `binaryType`, …) tests use.
 *
 * @since 0.1.0
 * @category models
 */
export type WebSocketFactory = (
  url: string,
  options?: Socket.WebSocketConstructorOptions | undefined
) => FakeWebSocket

/**
 * The server's view of one fake connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface Peer {
  /** The URL the client connected to (with its query string). */
  readonly url: string
  /** The handshake headers the client gave (`WebSocketClientOptions.headers`), lower-cased; empty if none. */
  readonly headers: Readonly<Record<string, string>>
  /** Sends a frame to the client. Ignored once the connection is closed. */
  readonly send: (frame: Protocol.Frame) => void
  /** Closes the connection from the server side with a close frame. */
  readonly close: (code?: number, reason?: string) => void
  /** Drops the connection without a close frame: the client sees an error, then close code 1006. */
  readonly terminate: () => void
  /** Whether the connection is still open. */
  readonly isOpen: () => boolean
}

/**
 * What an acceptor does with a connection it accepted.
 *
 * @since 0.1.0
 * @category models
 */
export interface PeerHandlers {
  /** A frame the client sent. */
  readonly onMessage: (frame: Protocol.Frame) => void
  /** The connection closed (by either side). */
  readonly onClose: (code: number, reason: string) => void
}

/**
 * A refused handshake: the client sees an `error` event and close code 1006, as browsers report an
 * HTTP error answer to the upgrade request (the answer itself is kept as `upgradeResponse`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Refusal {
  readonly refuse: { readonly status: number; readonly body?: string | undefined }
}

/**
 * The server end: called once per connection attempt.
 *
 * @since 0.1.0
 * @category models
 */
export type Acceptor = (peer: Peer) => PeerHandlers | Refusal

const CONNECTING = 0
const OPEN = 1
const CLOSING = 2
const CLOSED = 3

type Listener = ((event: any) => void) | { handleEvent(event: any): void }

const makeEvent = (type: string, fields: Record<string, unknown>): Event => {
  const event = new Event(type)
  for (const key in fields) {
    Object.defineProperty(event, key, { value: fields[key], enumerable: true })
  }
  return event
}

const copyBytes = (data: unknown): Uint8Array | undefined => {
  if (data instanceof Uint8Array) return data.slice()
  if (data instanceof ArrayBuffer) return new Uint8Array(data.slice(0))
  if (ArrayBuffer.isView(data)) {
    return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength))
  }
  return undefined
}

const noHeaders: Readonly<Record<string, string>> = Object.freeze({})

const headersOf = (options: Socket.WebSocketConstructorOptions | undefined): Readonly<Record<string, string>> => {
  if (options === undefined || typeof options === "string" || Array.isArray(options)) return noHeaders
  const given = (options as Socket.WebSocketClientOptions).headers
  if (given === undefined) return noHeaders
  const out: Record<string, string> = {}
  for (const key of Object.keys(given)) out[key.toLowerCase()] = given[key]!
  return out
}

/**
 * An in-memory `WebSocket`. Construct it through `makeConstructor` / `makeClass` with an acceptor.
 *
 * @since 0.1.0
 * @category models
 */
export class FakeWebSocket extends EventTarget implements Socket.WebSocketLike {
  /** @since 0.1.0 */
  static readonly CONNECTING = CONNECTING
  /** @since 0.1.0 */
  static readonly OPEN = OPEN
  /** @since 0.1.0 */
  static readonly CLOSING = CLOSING
  /** @since 0.1.0 */
  static readonly CLOSED = CLOSED
  /** @since 0.1.0 */
  readonly CONNECTING = CONNECTING
  /** @since 0.1.0 */
  readonly OPEN = OPEN
  /** @since 0.1.0 */
  readonly CLOSING = CLOSING
  /** @since 0.1.0 */
  readonly CLOSED = CLOSED

  /** @since 0.1.0 */
  readyState: number = CONNECTING
  /** @since 0.1.0 */
  binaryType: "blob" | "arraybuffer" | "nodebuffer" = "blob"
  /** The HTTP answer when the server refused the upgrade (set before the `error` event). */
  upgradeResponse: { readonly status: number; readonly body: string } | undefined = undefined
  /** @since 0.1.0 */
  readonly bufferedAmount = 0
  /** @since 0.1.0 */
  readonly extensions = ""
  /** @since 0.1.0 */
  readonly protocol = ""
  /** @since 0.1.0 */
  onopen: ((event: Event) => void) | null = null
  /** @since 0.1.0 */
  onmessage: ((event: MessageEvent) => void) | null = null
  /** @since 0.1.0 */
  onclose:
    | ((event: Event & { readonly code: number; readonly reason: string; readonly wasClean: boolean }) => void)
    | null = null
  /** @since 0.1.0 */
  onerror: ((event: Event) => void) | null = null

  private handlers: PeerHandlers | undefined
  private closingFromServer = false
  private readonly inbox: Array<() => void> = []
  private scheduled = false

  /**
   * `options`: protocols (ignored), or Node-style client options whose `headers` the acceptor sees.
   *
   * @since 0.1.0
   */
  constructor(
    readonly url: string,
    options: Socket.WebSocketConstructorOptions | undefined,
    acceptor: Acceptor
  ) {
    super()
    const peer: Peer = {
      url,
      headers: headersOf(options),
      send: (frame) => {
        if (this.readyState !== OPEN || this.closingFromServer) return
        const data = typeof frame === "string" ? frame : frame.slice()
        this.enqueue(() => this.deliver(data))
      },
      close: (code = 1000, reason = "") => {
        if (this.readyState >= CLOSING || this.closingFromServer) return
        // frames sent before the close frame are still delivered, as on a real socket
        this.closingFromServer = true
        this.enqueue(() => this.finish(code, reason, true))
      },
      terminate: () => {
        if (this.readyState >= CLOSING) return
        this.readyState = CLOSING
        this.enqueue(() => {
          this.emit("error", makeEvent("error", { message: "connection reset" }))
          this.finish(1006, "", false)
        })
      },
      isOpen: () => this.readyState === OPEN && !this.closingFromServer
    }
    this.enqueue(() => {
      if (this.readyState !== CONNECTING) return
      const result = acceptor(peer)
      if ("refuse" in result) {
        this.readyState = CLOSED
        this.upgradeResponse = { status: result.refuse.status, body: result.refuse.body ?? "" }
        this.emit("error", makeEvent("error", { message: `Unexpected server response: ${result.refuse.status}` }))
        this.emit("close", makeEvent("close", { code: 1006, reason: "", wasClean: false }))
        return
      }
      this.handlers = result
      this.readyState = OPEN
      this.emit("open", makeEvent("open", {}))
    })
  }

  /** @since 0.1.0 */
  send(data: string | ArrayBufferLike | ArrayBufferView | Blob): void {
    if (this.readyState === CONNECTING) throw new Error("InvalidStateError: WebSocket is still CONNECTING")
    if (this.readyState !== OPEN) return
    const frame: Protocol.Frame | undefined = typeof data === "string" ? data : copyBytes(data)
    if (frame === undefined) throw new TypeError("FakeWebSocket: unsupported data type")
    const handlers = this.handlers!
    this.enqueue(() => handlers.onMessage(frame))
  }

  /** @since 0.1.0 */
  close(code = 1000, reason = ""): void {
    if (this.readyState >= CLOSING) return
    if (this.readyState === CONNECTING) {
      this.readyState = CLOSED
      this.enqueue(() => this.emit("close", makeEvent("close", { code: 1006, reason: "", wasClean: false })))
      return
    }
    this.readyState = CLOSING
    this.enqueue(() => this.finish(code, reason, true))
  }

  /** @since 0.1.0 */
  override addEventListener(
    type: string,
    listener: Listener | null,
    // spelled out: `AddEventListenerOptions` is a DOM type, and the published types must not need the DOM lib
    options?: boolean | { readonly once?: boolean; readonly capture?: boolean; readonly passive?: boolean }
  ) {
    super.addEventListener(type, listener as EventListener, options)
  }

  /** @since 0.1.0 */
  override removeEventListener(
    type: string,
    listener: Listener | null,
    options?: boolean | { readonly capture?: boolean }
  ) {
    super.removeEventListener(type, listener as EventListener, options)
  }

  private finish(code: number, reason: string, wasClean: boolean) {
    if (this.readyState === CLOSED) return
    this.readyState = CLOSED
    this.handlers?.onClose(code, reason)
    this.emit("close", makeEvent("close", { code, reason, wasClean }))
  }

  private deliver(data: Protocol.Frame) {
    if (this.readyState !== OPEN) return
    let value: unknown = data
    if (typeof data !== "string") {
      value = this.binaryType === "blob"
        ? new Blob([data as Uint8Array<ArrayBuffer>])
        : this.binaryType === "nodebuffer"
        ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
        : data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)
    }
    this.emit("message", makeEvent("message", { data: value }))
  }

  private emit(type: "open" | "message" | "close" | "error", event: Event) {
    const handler = type === "open"
      ? this.onopen
      : type === "message"
      ? this.onmessage
      : type === "close"
      ? this.onclose
      : this.onerror
    if (handler) (handler as (event: Event) => void).call(this, event)
    this.dispatchEvent(event)
  }

  // Everything crosses the fake wire on the microtask queue, in order, never re-entrantly.
  private enqueue(task: () => void) {
    this.inbox.push(task)
    if (this.scheduled) return
    this.scheduled = true
    queueMicrotask(() => {
      this.scheduled = false
      const tasks = this.inbox.splice(0)
      for (const run of tasks) run()
      if (this.inbox.length > 0 && !this.scheduled) this.enqueue(() => {})
    })
  }
}

/**
 * A `WebSocket` class whose instances connect to `acceptor`: pass it as realtime-js's `transport`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeClass = (
  acceptor: Acceptor
): new(url: string | URL, protocols?: string | Array<string>) => WebSocket =>
  class extends FakeWebSocket {
    constructor(url: string | URL, protocols?: string | Array<string>) {
      super(String(url), protocols, acceptor)
    }
  } as unknown as new(url: string | URL, protocols?: string | Array<string>) => WebSocket

/**
 * A `Socket.WebSocketConstructor` whose sockets connect to `acceptor`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeConstructor = (acceptor: Acceptor): WebSocketFactory => (url, options) =>
  new FakeWebSocket(url, options, acceptor)

/**
 * One connection as a test sees it from the server side.
 *
 * @since 0.1.0
 * @category models
 */
export interface FakeConnection {
  /** The URL the client connected to. */
  readonly url: string
  /** The handshake headers the client gave, lower-cased. */
  readonly headers: Readonly<Record<string, string>>
  /** Frames the client wrote, in order. */
  readonly sent: Queue.Dequeue<Protocol.Frame>
  /** Sends a frame to the client. */
  readonly send: (frame: Protocol.Frame) => Effect.Effect<void>
  /** Closes from the server side with a close frame. */
  readonly close: (code?: number, reason?: string) => Effect.Effect<void>
  /** Drops the connection abruptly (close code 1006). */
  readonly terminate: Effect.Effect<void>
  /** Completes with the close code and reason when the connection closes (either side). */
  readonly closed: Deferred.Deferred<{ readonly code: number; readonly reason: string }>
}

/**
 * The queue-driven fake server: each connection attempt appears on `connections`.
 *
 * @since 0.1.0
 * @category models
 */
export interface FakeServer {
  /** Accepted connections, in order. */
  readonly connections: Queue.Dequeue<FakeConnection>
  /** How many of the next connection attempts to refuse (decremented per refusal; 503 `refused by FakeServer`). */
  readonly refuseNext: Ref.Ref<number>
  /** Number of connection attempts so far (accepted or refused). */
  readonly attempts: Ref.Ref<number>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const FakeServer: Context.Service<FakeServer, FakeServer> = Context.Service<FakeServer>(
  "supabase-realtime-effect/testing/FakeSocket/FakeServer"
)

/**
 * Builds a fake server and the `WebSocketConstructor` that connects to it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<{
  readonly server: FakeServer
  readonly constructor: WebSocketFactory
}> = Effect.gen(function*() {
  const connections = yield* Queue.unbounded<FakeConnection>()
  const refuseNext = yield* Ref.make(0)
  const attempts = yield* Ref.make(0)
  const acceptor: Acceptor = (peer) => {
    Effect.runSync(Ref.update(attempts, (n) => n + 1))
    const refused = Effect.runSync(Ref.modify(refuseNext, (n) => n > 0 ? [true, n - 1] : [false, 0]))
    if (refused) return { refuse: { status: 503, body: "refused by FakeServer" } }
    const sent = Effect.runSync(Queue.unbounded<Protocol.Frame>())
    const closed = Deferred.makeUnsafe<{ readonly code: number; readonly reason: string }>()
    Queue.offerUnsafe(connections, {
      url: peer.url,
      headers: peer.headers,
      sent,
      send: (frame) => Effect.sync(() => peer.send(frame)),
      close: (code, reason) => Effect.sync(() => peer.close(code, reason)),
      terminate: Effect.sync(() => peer.terminate()),
      closed
    })
    return {
      onMessage: (frame) => {
        Queue.offerUnsafe(sent, frame)
      },
      onClose: (code, reason) => {
        Deferred.doneUnsafe(closed, Effect.succeed({ code, reason }))
      }
    }
  }
  return { server: { connections, refuseNext, attempts }, constructor: makeConstructor(acceptor) }
})

/**
 * The fake server plus a `Socket.WebSocketConstructor` connected to it: provide it in place of a
 * platform's constructor layer and drive the wire from the test.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<FakeServer | Socket.WebSocketConstructor> = Layer.effectContext(
  Effect.map(
    make,
    ({ constructor, server }) =>
      Context.make(FakeServer, server).pipe(Context.add(Socket.WebSocketConstructor, constructor))
  )
)
