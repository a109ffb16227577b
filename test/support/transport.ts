/**
 * The Transport test files' fake-socket harness: a transport over the fake socket, its frames,
 * its states and counters.
 */
import * as Socket from "@effect/platform/Socket"
import { assert } from "@effect/vitest"
import { Effect, Layer, Metric, Option, Queue, Stream } from "effect"
import * as FakeSocket from "../../src/testing/FakeSocket.js"
import * as Transport from "../../src/Transport.js"

/** Transport options, all optional (the URL and key have defaults). */
export type Options = Partial<Transport.Options>

/** A transport over a fresh fake socket, not connected. */
export const setup = (options: Options = {}, policies: Layer.Layer<never> = Layer.empty) =>
  Effect.gen(function*() {
    const { constructor, server } = yield* FakeSocket.make
    const transport = yield* Transport.make({ url: "ws://realtime.test/socket", apiKey: "anon-key", ...options }).pipe(
      Effect.provideService(Socket.WebSocketConstructor, constructor),
      Effect.provide(policies)
    )
    return { server, transport }
  })

/** Waits for the transport's state to have the given tag. */
export const awaitState = (transport: Transport.Transport, tag: Transport.ConnectionState["_tag"]) =>
  transport.stateChanges.pipe(
    Stream.filter((s) => s._tag === tag),
    Stream.runHead,
    Effect.map(Option.getOrThrow)
  )

/** A text frame, parsed. */
export const decode = (frame: FakeSocket.Frame): Array<unknown> => {
  assert.strictEqual(typeof frame, "string", "expected a text frame")
  return JSON.parse(frame as string)
}

/** The next frame the client sent on a connection, parsed. */
export const nextFrame = (connection: FakeSocket.FakeConnection) => Effect.map(Queue.take(connection.sent), decode)

/** Answers a frame with a `phx_reply`. */
export const reply = (
  connection: FakeSocket.FakeConnection,
  frame: Array<unknown>,
  status = "ok",
  response: unknown = {}
) => connection.send(JSON.stringify([frame[0], frame[1], frame[2], "phx_reply", { status, response }]))

/** A transport connected to a fresh fake socket, and the server's side of the connection. */
export const connected = (options: Options = {}, policies: Layer.Layer<never> = Layer.empty) =>
  Effect.gen(function*() {
    const { server, transport } = yield* setup(options, policies)
    yield* transport.connect
    const connection = yield* Queue.take(server.connections)
    yield* awaitState(transport, "Open")
    return { server, transport, connection }
  })

/** A counter metric's current count. */
export const counter = (metric: typeof Transport.metrics.framesBad) =>
  Metric.value(metric).pipe(Effect.map((s) => s.count))
