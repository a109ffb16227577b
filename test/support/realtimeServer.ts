/**
 * A raw-frame client of the in-process RealtimeServer (the RealtimeServer test files): it dials
 * over the fake socket and speaks frames through the Protocol serializers.
 */
import { expect } from "@effect/vitest"
import { Deferred, Effect, Exit, Queue } from "effect"
import * as Protocol from "../../src/Protocol.js"
import * as RealtimeServer from "../../src/testing/RealtimeServer.js"

/** A frame the raw client received, decoded, and whether it came binary. */
export interface Inbound extends Protocol.Message {
  readonly binary: boolean
}

/** How the raw client dials: protocol version, API key (`null`: none), path. */
export interface ConnectOptions {
  readonly vsn?: "1.0.0" | "2.0.0" | "none" | (string & {})
  readonly apikey?: string | null
  readonly path?: string
}

/** Opens a raw socket to the server, without waiting for it to open. */
export const connectRaw = (server: RealtimeServer.Server, options: ConnectOptions = {}) =>
  Effect.gen(function*() {
    const vsn = options.vsn ?? "2.0.0"
    const params = new URLSearchParams()
    if (options.apikey !== null) params.set("apikey", options.apikey ?? server.apiKey)
    if (vsn !== "none") params.set("vsn", vsn)
    const ws = server.webSocketConstructor(`ws://realtime.test${options.path ?? "/socket/websocket"}?${params}`)
    ws.binaryType = "arraybuffer"
    const serializer = vsn === "2.0.0" ? Protocol.v2 : Protocol.v1
    const inbox = yield* Queue.unbounded<Inbound>()
    const opened = yield* Deferred.make<void, string>()
    const closed = yield* Deferred.make<{ readonly code: number; readonly reason: string }>()
    ws.onopen = () => Deferred.unsafeDone(opened, Exit.void)
    ws.onerror = (event: any) => Deferred.unsafeDone(opened, Exit.fail(String(event.message)))
    ws.onclose = (event) => {
      Deferred.unsafeDone(opened, Exit.fail("closed"))
      Deferred.unsafeDone(closed, Exit.succeed({ code: event.code, reason: event.reason }))
    }
    ws.onmessage = (event) => {
      const data = event.data
      const frame: Protocol.Frame = typeof data === "string" ? data : new Uint8Array(data as ArrayBuffer)
      const decoded = serializer.decode(frame)
      if (decoded._tag === "Left") throw new Error(`client cannot decode: ${decoded.left.message}`)
      inbox.unsafeOffer({ ...decoded.right, binary: typeof frame !== "string" })
    }
    return { ws, serializer, inbox, opened, closed }
  })

/** A raw socket: the socket, its serializer, what it received, its open and close. */
export type Raw = Effect.Effect.Success<ReturnType<typeof connectRaw>>

/** Frame-level helpers over a raw socket: send, drain, push, join. */
export const client = (raw: Raw) => {
  let counter = 0
  const nextRef = () => String(++counter)
  const send = (message: Protocol.Message) =>
    Effect.sync(() => {
      const frame = raw.serializer.encode(message)
      if (frame._tag === "Left") throw frame.left
      raw.ws.send(frame.right)
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

/** Whether the server closed the client's socket. */
export const isClosed = (c: Client) => Deferred.isDone(c.closed)

/** A server without idle timeout. */
export const server = (options: RealtimeServer.Options = {}) => RealtimeServer.make({ idleTimeout: false, ...options })

/** A join payload with the given broadcast config. */
export const broadcastConfig = (broadcast: object, extra: object = {}) => ({ config: { broadcast, ...extra } })

/** The JSON body of an HTTP answer (`undefined` when empty). */
export const json = (r: RealtimeServer.HttpResponse) =>
  r.body.byteLength === 0 ? undefined : JSON.parse(new TextDecoder().decode(r.body))
