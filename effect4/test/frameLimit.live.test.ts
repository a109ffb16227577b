/**
 * maxFrameBytes over a real socket on 127.0.0.1: `ws` refuses a larger frame while reading it, the
 * connection closes with 1009 and the state says "frame too large"; a frame under it is delivered.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Latch, Layer, Metric, Option, Stream } from "effect"
import { WebSocketServer } from "ws"
import * as NodeRealtime from "../src/node/NodeRealtime.js"
import * as Transport from "../src/Transport.js"

// A Phoenix endpoint on 127.0.0.1 that sends, on each connection, a frame of `size` bytes of JSON.
const makeServer = (size: number) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly server: WebSocketServer; readonly port: number }>((resume) => {
      const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
      server.on("connection", (socket) => {
        const filler = "x".repeat(Math.max(0, size - 60))
        const frame = JSON.stringify([null, null, "realtime:big", "big", { filler }])
        socket.send(frame)
        socket.send(JSON.stringify([null, null, "realtime:big", "after", {}]))
      })
      server.on(
        "listening",
        () => resume(Effect.succeed({ server, port: (server.address() as { port: number }).port }))
      )
    }),
    ({ server }) =>
      Effect.callback<void>((resume) => {
        for (const client of server.clients) client.terminate()
        server.close(() => resume(Effect.void))
      })
  )

const transportFor = (port: number, maxFrameBytes: number) =>
  Layer.build(
    NodeRealtime.layer({ url: `ws://127.0.0.1:${port}/socket`, apiKey: "anon", maxFrameBytes, httpBroadcast: false })
  ).pipe(Effect.map((context) => Context.get(context, Transport.Transport)))

describe("maxFrameBytes over a real socket", () => {
  it.live("a frame over the limit closes the connection with 1009: 'frame too large' in the state", () =>
    Effect.gen(function*() {
      const { port } = yield* makeServer(2 * 1024 * 1024)
      const transport = yield* transportFor(port, 1024 * 1024)
      const events: Array<string> = []
      yield* transport.route("realtime:big", (message) => events.push(message.event))
      const before = (yield* Metric.value(Transport.metrics.framesBad)).count
      yield* transport.connect
      const state = yield* transport.stateChanges.pipe(
        Stream.filter((s) => s._tag === "Reconnecting"),
        Stream.runHead,
        Effect.map(Option.getOrThrow)
      )
      assert.strictEqual(state._tag, "Reconnecting")
      if (state._tag === "Reconnecting") {
        assert.strictEqual(state.code, 1009)
        assert.include(state.reason, "frame too large")
      }
      assert.deepStrictEqual(events, [])
      assert.strictEqual((yield* Metric.value(Transport.metrics.framesBad)).count - before, 1)
    }).pipe(Effect.scoped))

  it.live("the default is 8 MiB: a 9 MiB frame is refused", () =>
    Effect.gen(function*() {
      const { port } = yield* makeServer(9 * 1024 * 1024)
      const transport = yield* Layer.build(
        NodeRealtime.layer({ url: `ws://127.0.0.1:${port}/socket`, apiKey: "anon", httpBroadcast: false })
      ).pipe(Effect.map((context) => Context.get(context, Transport.Transport)))
      yield* transport.connect
      const state = yield* transport.stateChanges.pipe(
        Stream.filter((s) => s._tag === "Reconnecting"),
        Stream.runHead,
        Effect.map(Option.getOrThrow)
      )
      assert.strictEqual(state._tag === "Reconnecting" ? state.code : undefined, 1009)
    }).pipe(Effect.scoped))

  it.live("a frame under the limit is delivered", () =>
    Effect.gen(function*() {
      const { port } = yield* makeServer(512 * 1024)
      const transport = yield* transportFor(port, 1024 * 1024)
      const events: Array<string> = []
      const done = yield* Latch.make(false)
      yield* transport.route("realtime:big", (message) => {
        events.push(message.event)
        if (message.event === "after") done.openUnsafe()
      })
      const before = (yield* Metric.value(Transport.metrics.framesBad)).count
      yield* transport.connect
      yield* done.await
      assert.deepStrictEqual(events, ["big", "after"])
      assert.strictEqual((yield* Metric.value(Transport.metrics.framesBad)).count - before, 0)
    }).pipe(Effect.scoped))
})
