import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Option, Schedule, Stream } from "effect"
import { Worker } from "node:worker_threads"
import { WebSocketServer } from "ws"
import * as Heartbeat from "../src/Heartbeat.js"
import * as NodeRealtime from "../src/node/NodeRealtime.js"
import * as Reconnect from "../src/Reconnect.js"
import * as Transport from "../src/Transport.js"

// A minimal Phoenix endpoint on 127.0.0.1: answers heartbeats, counts connections.
const makeServer = Effect.acquireRelease(
  Effect.async<{ readonly server: WebSocketServer; readonly port: number }>((resume) => {
    const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
    server.on("connection", (socket) => {
      socket.on("message", (data) => {
        const [joinRef, ref, topic, event] = JSON.parse(String(data))
        if (topic === "phoenix" && event === "heartbeat") {
          socket.send(JSON.stringify([joinRef, ref, topic, "phx_reply", { status: "ok", response: {} }]))
        }
      })
    })
    server.on("listening", () => resume(Effect.succeed({ server, port: (server.address() as { port: number }).port })))
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      for (const client of server.clients) client.terminate()
      server.close(() => resume(Effect.void))
    })
)

// The same endpoint in a worker thread, so that it answers while this thread's event loop is blocked.
// It also acks every other push (a `broadcast` with ack).
const makeWorkerServer = Effect.acquireRelease(
  Effect.async<{ readonly worker: Worker; readonly port: number }>((resume) => {
    const worker = new Worker(
      `const { WebSocketServer } = require("ws")
      const { parentPort } = require("worker_threads")
      const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
      server.on("connection", (socket) => socket.on("message", (data) => {
        const [joinRef, ref, topic] = JSON.parse(String(data))
        if (ref !== null) socket.send(JSON.stringify([joinRef, ref, topic, "phx_reply", { status: "ok", response: {} }]))
      }))
      server.on("listening", () => parentPort.postMessage(server.address().port))`,
      { eval: true }
    )
    worker.once("message", (port: number) => resume(Effect.succeed({ worker, port })))
  }),
  ({ worker }) => Effect.promise(() => worker.terminate())
)

/**
 * Blocks this thread's event loop (a user's consumer doing synchronous work), from a check-phase
 * callback: the next loop iteration then runs the timers that expired meanwhile before it reads
 * the socket.
 */
const block = (millis: number) =>
  Effect.async<void>((resume) => {
    setImmediate(() => {
      const until = Date.now() + millis
      while (Date.now() < until) { /* busy */ }
      resume(Effect.void)
    })
  })

describe("Transport over a real ws server on 127.0.0.1", () => {
  it.scopedLive("a reply that arrived while the event loop was blocked beats the timer that fires with it", () =>
    Effect.gen(function*() {
      const { port } = yield* makeWorkerServer
      const layer = Transport.layer({ url: `ws://127.0.0.1:${port}`, apiKey: "anon", timeout: "100 millis" }).pipe(
        Layer.provide(NodeRealtime.layerWebSocketConstructor),
        Layer.provide(Heartbeat.layer({ interval: "100 millis", timeout: "100 millis" }))
      )
      const transport = Context.get(yield* Layer.build(layer), Transport.Transport)
      const statuses: Array<string> = []
      yield* transport.heartbeats.pipe(
        Stream.runForEach((s) => Effect.sync(() => statuses.push(s._tag))),
        Effect.forkScoped
      )
      yield* transport.connect
      yield* transport.stateChanges.pipe(Stream.filter((s) => s._tag === "Open"), Stream.runHead)
      // a request whose reply comes while the loop is blocked past its timeout
      const ref = transport.makeRef()
      const request = yield* transport.request({ joinRef: null, ref, topic: "realtime:a", event: "x", payload: {} })
        .pipe(Effect.fork)
      yield* block(400)
      assert.isTrue(Exit.isSuccess(yield* Fiber.await(request)), "the acked request timed out")
      // heartbeats: block right after each one is sent, three times
      for (let i = 0; i < 3; i++) {
        yield* transport.heartbeats.pipe(Stream.filter((s) => s._tag === "Sent"), Stream.runHead)
        yield* block(400)
        yield* transport.heartbeats.pipe(Stream.filter((s) => s._tag !== "Sent"), Stream.runHead)
      }
      assert.notInclude(statuses, "Timeout")
      assert.strictEqual((yield* transport.state)._tag, "Open")
    }))

  it.scopedLive("connects, gets heartbeat replies, reconnects after the server kills the socket", () =>
    Effect.gen(function*() {
      const { port, server } = yield* makeServer
      const connections: Array<string> = []
      server.on("connection", (_socket, request) => connections.push(request.url ?? ""))
      const layer = Transport.layer({ url: `ws://127.0.0.1:${port}`, apiKey: "anon" }).pipe(
        Layer.provide(NodeRealtime.layerWebSocketConstructor),
        Layer.provide(Heartbeat.layer({ interval: "50 millis", timeout: "5 seconds" })),
        Layer.provide(Reconnect.layer({ reconnect: Schedule.spaced("20 millis") }))
      )
      const transport = Context.get(yield* Layer.build(layer), Transport.Transport)
      const ok = yield* transport.heartbeats.pipe(
        Stream.filter((s) => s._tag === "Ok"),
        Stream.runHead,
        Effect.fork
      )
      yield* transport.connect
      const status = Option.getOrThrow(yield* Fiber.join(ok).pipe(Effect.timeout("5 seconds")))
      assert.strictEqual(status._tag, "Ok")
      assert.deepStrictEqual(connections, ["/websocket?apikey=anon&vsn=2.0.0"])

      const reopened = yield* transport.stateChanges.pipe(
        Stream.filter((s) => s._tag === "Reconnecting"),
        Stream.take(1),
        Stream.runDrain,
        Effect.zipRight(
          transport.stateChanges.pipe(Stream.filter((s) => s._tag === "Open"), Stream.take(1), Stream.runDrain)
        ),
        Effect.fork
      )
      for (const client of server.clients) client.terminate()
      yield* Fiber.join(reopened).pipe(Effect.timeout("5 seconds"))
      assert.strictEqual(connections.length, 2)
      const exit = yield* Effect.exit(transport.disconnect())
      assert.isTrue(Exit.isSuccess(exit))
    }))

  it.scopedLive("disconnect with a code or reason the socket refuses still closes (with 1000) and never fails", () =>
    Effect.gen(function*() {
      const { port, server } = yield* makeServer
      const codes: Array<number> = []
      server.on("connection", (socket) => socket.on("close", (code) => codes.push(code)))
      const layer = Transport.layer({ url: `ws://127.0.0.1:${port}`, apiKey: "anon" }).pipe(
        Layer.provide(NodeRealtime.layerWebSocketConstructor),
        Layer.provide(Heartbeat.layer({ interval: "1 minute", timeout: "5 seconds" }))
      )
      const transport = Context.get(yield* Layer.build(layer), Transport.Transport)
      for (const options of [{ code: 1005 }, { reason: "x".repeat(124) }]) {
        yield* transport.connect
        yield* transport.stateChanges.pipe(Stream.filter((s) => s._tag === "Open"), Stream.runHead)
        const exit = yield* Effect.exit(transport.disconnect(options))
        assert.isTrue(Exit.isSuccess(exit), String(exit))
        assert.strictEqual((yield* transport.state)._tag, "Closed")
      }
      while (codes.length < 2) yield* Effect.sleep("10 millis")
      assert.deepStrictEqual(codes, [1000, 1000])
    }))
})
