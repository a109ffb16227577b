/**
 * The transport under a `Network`: no attempts while the device is offline, a reconnect at once
 * when the network or the page comes back, a heartbeat at once on resume while connected. Over the
 * fake socket with a manual network, under `TestClock`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Option, Queue, Stream } from "effect"
import { Socket } from "effect/socket"
import { TestClock } from "effect/testing"
import * as AccessToken from "../src/AccessToken.js"
import * as Network from "../src/Network.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as Reconnect from "../src/Reconnect.js"
import * as FakeSocket from "../src/testing/FakeSocket.js"
import type * as Transport from "../src/Transport.js"
import { nextOf, replyOk } from "./support/frames.js"
import { awaitStatus } from "./support/status.js"

const URL = "ws://realtime.test/socket"

const setup = (options: { readonly online?: boolean; readonly reconnect?: Partial<Reconnect.Reconnect> } = {}) =>
  Effect.gen(function*() {
    const { constructor, server } = yield* FakeSocket.make
    const manual = Network.makeManual(options.online ?? true)
    let tokens = 0
    const layer = RealtimeClient.layer({ url: URL, apiKey: "anon" }).pipe(
      Layer.provide(Layer.succeed(Socket.WebSocketConstructor, constructor)),
      Layer.provide(Layer.succeed(Network.Network, manual.network)),
      Layer.provide(Reconnect.layer(options.reconnect ?? {})),
      Layer.provide(AccessToken.layerFrom(Effect.sync(() => `token-${++tokens}`)))
    )
    const client = Context.get(yield* Layer.build(layer).pipe(Effect.orDie), RealtimeClient.RealtimeClient)
    return { client, server, manual, tokens: () => tokens }
  })

const awaitState = (client: RealtimeClient.RealtimeClient, tag: Transport.ConnectionState["_tag"]) =>
  client.stateChanges.pipe(Stream.filter((s) => s._tag === tag), Stream.runHead, Effect.map(Option.getOrThrow))

const noConnection = (server: FakeSocket.FakeServer) => Effect.map(Queue.poll(server.connections), Option.isNone)

/** The state changes from now on, collected until `until` holds (forked). */
const statesUntil = (client: RealtimeClient.RealtimeClient, until: (s: Transport.ConnectionState) => boolean) =>
  client.stateChanges.pipe(
    Stream.drop(1),
    Stream.takeUntil(until),
    Stream.runCollect,
    Effect.map((states): ReadonlyArray<Transport.ConnectionState> => states),
    Effect.forkChild,
    Effect.tap(() => Effect.yieldNow)
  )

describe("Network", () => {
  it.effect("offline at connect: the state says so, no attempt is made; the network back connects at once", () =>
    Effect.gen(function*() {
      const { client, manual, server } = yield* setup({ online: false })
      yield* client.connect
      yield* Effect.yieldNow
      const state = yield* client.state
      assert.strictEqual(state._tag, "Offline")
      assert.include((state as { reason: string }).reason, "no network")
      yield* TestClock.adjust("10 minutes")
      assert.isTrue(yield* noConnection(server), "no attempt while offline")

      manual.set(true)
      yield* Queue.take(server.connections)
      yield* awaitState(client, "Open")
    }))

  it.effect("a socket lost while offline spends no reconnect attempt; the network back reconnects at once", () =>
    Effect.gen(function*() {
      // one reconnect allowed: were attempts spent while offline, the client would give up
      const { client, manual, server } = yield* setup({
        reconnect: { reconnect: Reconnect.exponential({ jitter: false, maxAttempts: 1, base: "1 hour" }) }
      })
      yield* client.connect
      const first = yield* Queue.take(server.connections)
      const states = yield* statesUntil(client, (s) => s._tag === "Open")
      manual.set(false)
      yield* first.close(1006)
      yield* TestClock.adjust("3 hours")
      assert.isTrue(yield* noConnection(server))
      assert.strictEqual((yield* client.state)._tag, "Offline")

      manual.set(true)
      yield* Queue.take(server.connections)
      assert.deepStrictEqual((yield* Fiber.join(states)).map((s) => s._tag), ["Offline", "Connecting", "Open"])
    }))

  it.effect("the network or the page back ends a reconnect backoff at once", () =>
    Effect.gen(function*() {
      const { client, manual, server } = yield* setup({
        reconnect: { reconnect: Reconnect.exponential({ jitter: false, base: "1 hour" }) }
      })
      yield* client.connect
      yield* (yield* Queue.take(server.connections)).close(1006)
      yield* awaitState(client, "Reconnecting")
      // a page that comes back within a second of the last attempt does not end the backoff (tab
      // switching during an outage must not storm the server); a second later it does
      manual.resume()
      yield* Effect.yieldNow
      assert.isTrue(yield* noConnection(server), "no attempt within a second of the last")
      yield* TestClock.adjust("1 second")
      manual.resume()
      yield* Queue.take(server.connections)
      // and once more with the network
      const second = yield* Queue.take(server.connections).pipe(Effect.forkChild)
      yield* Effect.yieldNow
      manual.set(false)
      manual.set(true)
      // time for a replacement to happen, were the open socket dropped (it only gets a heartbeat)
      yield* TestClock.adjust("1 second")
      assert.isUndefined(second.pollUnsafe(), "an open socket is not replaced")
      yield* Fiber.interrupt(second)
    }))

  it.effect("a resumed page probes an open socket with a heartbeat at once", () =>
    Effect.gen(function*() {
      const { client, manual, server } = yield* setup()
      yield* client.connect
      const connection = yield* Queue.take(server.connections)
      yield* TestClock.adjust("5 seconds")
      manual.resume()
      const heartbeat = yield* nextOf(connection, "heartbeat")
      assert.strictEqual(heartbeat.topic, "phoenix")
    }))

  it.effect("a subscribe made offline settles within the subscribe bound, with the offline reason", () =>
    Effect.gen(function*() {
      const { client, server } = yield* setup({ online: false })
      const channel = yield* client.channel("room")
      const subscribing = yield* Effect.forkChild(Effect.scoped(channel.subscribe))
      yield* awaitState(client, "Offline")
      yield* TestClock.adjust("167 seconds")
      assert.isUndefined(subscribing.pollUnsafe(), "still waiting for the network")
      yield* TestClock.adjust("1 second")
      const error = yield* Effect.flip(Fiber.join(subscribing))
      assert.include(error.message, "no network")
      assert.isTrue(yield* noConnection(server), "no attempt while offline")
    }))

  it.effect("a subscribed channel rejoins with a fresh token when the network comes back", () =>
    Effect.gen(function*() {
      const { client, manual, server, tokens } = yield* setup({
        reconnect: { reconnect: Reconnect.exponential({ jitter: false, base: "1 hour" }) }
      })
      const channel = yield* client.channel("room")
      const subscribing = yield* Effect.forkChild(channel.subscribe)
      const first = yield* Queue.take(server.connections)
      const join = yield* nextOf(first, "phx_join")
      assert.deepStrictEqual((join.payload as { access_token: string }).access_token, "token-1")
      yield* replyOk(first, join)
      yield* Fiber.join(subscribing)

      manual.set(false)
      yield* first.close(1006)
      yield* awaitState(client, "Offline")
      assert.notStrictEqual((yield* channel.status)._tag, "Subscribed")
      manual.set(true)
      const second = yield* Queue.take(server.connections)
      const rejoin = yield* nextOf(second, "phx_join")
      assert.strictEqual((rejoin.payload as { access_token: string }).access_token, `token-${tokens()}`)
      assert.isAbove(tokens(), 1, "the token was fetched again for the rejoin")
      yield* replyOk(second, rejoin)
      yield* awaitStatus(channel, "Subscribed")
    }))
})
