/**
 * Stream buffers over a real socket on 127.0.0.1: a flood arrives in a few large reads, each
 * delivered in one I/O turn; a consumer that does no work must receive all of it, whatever its
 * bufferSize.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Metric, Stream } from "effect"
import { WebSocketServer } from "ws"
import * as NodeRealtime from "../src/node/NodeRealtime.js"
import * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"

const FLOOD = 20_000

// A Phoenix endpoint on 127.0.0.1: answers the join, then sends FLOOD broadcasts and an "end".
const makeServer = Effect.acquireRelease(
  Effect.callback<{ readonly server: WebSocketServer; readonly port: number }>((resume) => {
    const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
    server.on("connection", (socket) => {
      socket.on("message", (data) => {
        const [joinRef, ref, topic, event] = JSON.parse(String(data))
        if (event !== "phx_join") return
        socket.send(JSON.stringify([joinRef, ref, topic, "phx_reply", { status: "ok", response: {} }]))
        for (let seq = 0; seq < FLOOD; seq++) {
          socket.send(
            JSON.stringify([null, null, topic, "broadcast", { type: "broadcast", event: "tick", payload: { seq } }])
          )
        }
        socket.send(JSON.stringify([null, null, topic, "broadcast", { type: "broadcast", event: "end", payload: {} }]))
      })
    })
    server.on("listening", () => resume(Effect.succeed({ server, port: (server.address() as { port: number }).port })))
  }),
  ({ server }) =>
    Effect.callback<void>((resume) => {
      for (const client of server.clients) client.terminate()
      server.close(() => resume(Effect.void))
    })
)

describe("stream buffers over a real socket", () => {
  it.live("a consumer that does no work receives a whole flood at bufferSize 256", () =>
    Effect.gen(function*() {
      const { port } = yield* makeServer
      const client = yield* Layer.build(
        NodeRealtime.layer({ url: `ws://127.0.0.1:${port}/socket`, apiKey: "anon", httpBroadcast: false })
      ).pipe(Effect.map((context) => Context.get(context, RealtimeClient.RealtimeClient)))
      const droppedBefore = (yield* Metric.value(RealtimeChannel.metrics.dropped)).count
      const channel = yield* client.channel("flood", {}, { bufferSize: 256 })
      let ticks = 0
      const consumer = yield* channel.broadcast("*").pipe(
        Stream.takeUntil((b) => b.event === "end"),
        Stream.runForEachArray((chunk) => {
          for (const b of chunk) if (b.event === "tick") ticks++
          return Effect.void
        }),
        Effect.forkChild({ startImmediately: true })
      )
      yield* channel.subscribe
      // a dropped "end" would leave the consumer waiting: give up after a while and count
      yield* Fiber.await(consumer).pipe(Effect.timeout("10 seconds"), Effect.ignore)
      assert.strictEqual(ticks, FLOOD)
      assert.strictEqual((yield* Metric.value(RealtimeChannel.metrics.dropped)).count - droppedBefore, 0)
    }).pipe(Effect.scoped))
})
