/**
 * A client of the Effect 4 edition over the fake socket, for the channel and client tests (run under
 * `TestClock`): the harness, a subscribe whose join the test answers, and a wait for the event
 * loop's next I/O turn.
 */
import { Context, Effect, Fiber, Layer, Queue, Scope } from "effect"
import { Socket } from "effect/socket"
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

/**
 * Subscribes a channel (in `scope` when given: the subscription ends when it closes) and answers its
 * join with `response`: returns the connection and the join message.
 */
export const joined = (
  harness: Harness,
  channel: RealtimeChannel.RealtimeChannel,
  response: unknown = { postgres_changes: [] },
  scope?: Scope.Scope
) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(
      scope === undefined ? channel.subscribe : Scope.provide(channel.subscribe, scope)
    )
    const connection = yield* Queue.take(harness.server.connections)
    const join = yield* nextOf(connection, "phx_join")
    yield* reply(connection, join, "ok", response)
    yield* Fiber.join(fiber)
    return { connection, join }
  })

/** Subscribes a channel in `scope` and answers its join (see {@link joined}). */
export const joinedIn = (harness: Harness, channel: RealtimeChannel.RealtimeChannel, scope: Scope.Scope) =>
  joined(harness, channel, undefined, scope)

/** Lets the event loop finish its current I/O turn (the streams' end-of-turn wake-ups run). */
export const nextIoTurn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
