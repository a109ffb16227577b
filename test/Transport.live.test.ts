import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Option, Schedule, Stream } from "effect"
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

describe("Transport over a real ws server on 127.0.0.1", () => {
  it.scopedLive("connects, gets heartbeat replies, reconnects after the server kills the socket", () =>
    Effect.gen(function*() {
      const { port, server } = yield* makeServer
      const connections: Array<string> = []
      server.on("connection", (_socket, request) => connections.push(request.url ?? ""))
      const layer = Transport.layer({ url: `ws://127.0.0.1:${port}`, apiKey: "anon" }).pipe(
        Layer.provide(NodeRealtime.layerWebSocketConstructor),
        Layer.provide(Heartbeat.layer({ interval: "50 millis" })),
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
})
