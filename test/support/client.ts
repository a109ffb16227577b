/**
 * A client of the Effect 3 edition over the fake socket, for the channel and client tests (run under
 * `TestClock`): the harness, a subscribe whose join the test answers, and a wait for the event
 * loop's next I/O turn.
 */
import * as Socket from "@effect/platform/Socket"
import { Context, Effect, Fiber, Layer, Queue, type Scope } from "effect"
import type * as RealtimeChannel from "../../src/RealtimeChannel.js"
import * as RealtimeClient from "../../src/RealtimeClient.js"
import * as FakeSocket from "../../src/testing/FakeSocket.js"
import { nextOf, reply } from "./frames.js"

/** The endpoint the fake socket pretends to be. */
export const URL = "ws://realtime.test/socket"

/** The fake server and a client connected to it. */
export interface Harness {
  readonly server: FakeSocket.FakeServer
  readonly client: RealtimeClient.RealtimeClient
}

/** A client on a fresh fake server, built with `options` and the `extra` layer (a token source, policies). */
export const setup = (
  options: Partial<RealtimeClient.Options> = {},
  extra: Layer.Layer<any> = Layer.empty as Layer.Layer<any>
): Effect.Effect<Harness, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { constructor, server } = yield* FakeSocket.make
    const layer = RealtimeClient.layer({ url: URL, apiKey: "anon", ...options }).pipe(
      Layer.provide(Layer.succeed(Socket.WebSocketConstructor, constructor)),
      Layer.provide(extra)
    )
    const context = yield* Layer.build(layer).pipe(Effect.orDie)
    return { server, client: Context.get(context, RealtimeClient.RealtimeClient) }
  })

/** Subscribes a channel and answers its join with `response`: returns the connection and the join message. */
export const joined = (
  harness: Harness,
  channel: RealtimeChannel.RealtimeChannel,
  response: unknown = { postgres_changes: [] }
) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(channel.subscribe)
    const connection = yield* Queue.take(harness.server.connections)
    const join = yield* nextOf(connection, "phx_join")
    yield* reply(connection, join, "ok", response)
    yield* Fiber.join(fiber)
    return { connection, join }
  })

/** Lets the event loop finish its current I/O turn (the streams' end-of-turn wake-ups run). */
export const nextIoTurn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
