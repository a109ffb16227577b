/**
 * A raw-frame client of the in-process RealtimeServer (the RealtimeServer test files): it dials
 * over the fake socket (or a real one on 127.0.0.1) and speaks frames through the core's serializers.
 */
import { expect } from "@effect/vitest"
import { Deferred, Effect, Exit, Queue } from "effect"
import type * as Model from "../../../src/core/protocol/model.js"
import * as Serializer from "../../../src/core/protocol/serializer.js"
import * as RealtimeServer from "../../src/testing/RealtimeServer.js"

/** A frame the raw client received, decoded, and whether it came binary. */
export interface Inbound extends Model.Message {
  readonly binary: boolean
}

/** The DOM-style WebSocket the raw client drives (the fake one, or Node's global one). */
export interface DomSocket {
  binaryType: string
  onopen: ((event: any) => void) | null
  onerror: ((event: any) => void) | null
  onclose: ((event: any) => void) | null
  onmessage: ((event: any) => void) | null
  send(data: string | Uint8Array): void
  close(code?: number, reason?: string): void
}

/** How the raw client dials: protocol version, API key (`null`: none), path. */
export interface ConnectOptions {
  readonly vsn?: "1.0.0" | "2.0.0" | "none" | (string & {})
  readonly apikey?: string | null
  readonly path?: string
  /** Dial a real socket (Node's global WebSocket) at the server's listener instead of memory. */
  readonly real?: boolean
}

/** Opens a raw socket to the server, without waiting for it to open. */
export const connectRaw = (server: RealtimeServer.Server, options: ConnectOptions = {}) =>
  Effect.gen(function*() {
    const vsn = options.vsn ?? "2.0.0"
    const params = new URLSearchParams()
    if (options.apikey !== null) params.set("apikey", options.apikey ?? server.apiKey)
    if (vsn !== "none") params.set("vsn", vsn)
    const path = `${options.path ?? "/socket/websocket"}?${params}`
    const ws: DomSocket = options.real === true
      ? new globalThis.WebSocket(`ws://127.0.0.1:${server.port}${path}`) as unknown as DomSocket
      : server.webSocketConstructor(`ws://realtime.test${path}`)
    ws.binaryType = "arraybuffer"
    const serializer = vsn === "2.0.0" ? Serializer.v2 : Serializer.v1
    const inbox = yield* Queue.unbounded<Inbound>()
    const opened = yield* Deferred.make<void, string>()
    const closed = yield* Deferred.make<{ readonly code: number; readonly reason: string }>()
    ws.onopen = () => Deferred.doneUnsafe(opened, Exit.void)
    ws.onerror = (event: any) => Deferred.doneUnsafe(opened, Exit.fail(String(event.message)))
    ws.onclose = (event: any) => {
      Deferred.doneUnsafe(opened, Exit.fail("closed"))
      Deferred.doneUnsafe(closed, Exit.succeed({ code: event.code, reason: event.reason }))
    }
    ws.onmessage = (event: any) => {
      const data = event.data
      const frame: Model.Frame = typeof data === "string" ? data : new Uint8Array(data as ArrayBuffer)
      const decoded = serializer.decode(frame)
      if (!decoded.ok) throw new Error(`client cannot decode: ${decoded.error.message}`)
      Queue.offerUnsafe(inbox, { ...decoded.value, binary: typeof frame !== "string" })
    }
    // a real socket is closed with the test's scope (in memory, the server's own scope closes it)
    if (options.real === true) yield* Effect.addFinalizer(() => Effect.sync(() => ws.close()))
    return { ws, serializer, inbox, opened, closed }
  })

/** A raw socket: the socket, its serializer, what it received, its open and close. */
export type Raw = Effect.Success<ReturnType<typeof connectRaw>>

/** Frame-level helpers over a raw socket: send, drain, push, join. */
export const client = (raw: Raw) => {
  let counter = 0
  const nextRef = () => String(++counter)
  const send = (message: Model.Message) =>
    Effect.sync(() => {
      const frame = raw.serializer.encode(message)
      if (!frame.ok) throw new Error(frame.error.message)
      raw.ws.send(frame.value)
    })
  const next = Queue.take(raw.inbox)
  /** Frames until the reply to a heartbeat sent now: everything the server sent before it. */
  const drain = Effect.gen(function*() {
    const ref = `sync-${nextRef()}`
    yield* send({ joinRef: null, ref, topic: "phoenix", event: "heartbeat", payload: {} })
    const out: Array<Inbound> = []
    while (true) {
      const message = yield* next
      if (message.topic === "phoenix" && message.ref === ref) return out
      out.push(message)
    }
  })
  /** Takes frames until one matches; the others are dropped. */
  const until = (predicate: (message: Inbound) => boolean) =>
    Effect.gen(function*() {
      while (true) {
        const message = yield* next
        if (predicate(message)) return message
      }
    })
  const push = (topic: string, event: string, payload: unknown, joinRef: string | null) =>
    Effect.gen(function*() {
      const ref = nextRef()
      yield* send({ joinRef, ref, topic, event, payload })
      return ref
    })
  const replyTo = (ref: string) => until((m) => m.event === "phx_reply" && m.ref === ref)
  const join = (topic: string, payload: unknown = { config: {} }) =>
    Effect.gen(function*() {
      const ref = nextRef()
      yield* send({ joinRef: ref, ref, topic, event: "phx_join", payload })
      const reply = yield* replyTo(ref)
      return { joinRef: ref, reply: reply.payload as any }
    })
  const joined = (topic: string, payload: unknown = { config: {} }) =>
    Effect.gen(function*() {
      const result = yield* join(topic, payload)
      expect(result.reply.status).toBe("ok")
      return result.joinRef
    })
  return { ...raw, send, next, drain, until, push, replyTo, join, joined, nextRef }
}

/** A connected raw-frame client. */
export type Client = ReturnType<typeof client>

/** A raw-frame client, connected. */
export const connect = (server: RealtimeServer.Server, options: ConnectOptions = {}) =>
  Effect.gen(function*() {
    const raw = yield* connectRaw(server, options)
    yield* Deferred.await(raw.opened)
    return client(raw)
  })

/** A server without idle timeout. */
export const server = (options: RealtimeServer.Options = {}) => RealtimeServer.make({ idleTimeout: false, ...options })

/** A join payload with the given broadcast config. */
export const broadcastConfig = (broadcast: object, extra: object = {}) => ({ config: { broadcast, ...extra } })

/** The JSON body of an HTTP answer (`undefined` when empty). */
export const json = (r: RealtimeServer.HttpResponse) =>
  r.body.byteLength === 0 ? undefined : JSON.parse(new TextDecoder().decode(r.body))

/** Whether the server closed the client's socket. */
export const isClosed = (c: Client) => Deferred.isDone(c.closed)
