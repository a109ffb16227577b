/**
 * The network comes and goes: with a `Network` service the client makes no reconnect attempt while
 * the device is offline (the state says so), and reconnects at once when the network comes back,
 * instead of waiting out its backoff. In the browser `BrowserRealtime.layer` follows the page by
 * itself; here a manual network stands in for a platform's reachability callbacks.
 * Run: npm exec -- tsx examples/network.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Context, Effect, Layer, Option, Schedule, Stream } from "effect"
import { Network, RealtimeClient } from "../src/index.js"
import { NodeRealtime } from "../src/node/index.js"
import { Endpoint, EndpointLive } from "./support.js"

const program = Effect.gen(function*() {
  const { apiKey, server, url } = yield* Endpoint
  if (Option.isNone(server)) return yield* Effect.log("this example drops sockets on the embedded server only")
  const network = Network.makeManual(true)
  const client = yield* Layer.build(
    NodeRealtime.layer({ url, apiKey, reconnect: { reconnect: Schedule.spaced("1 hour") } }).pipe(
      Layer.provide(Layer.succeed(Network.Network, network.network))
    )
  ).pipe(Effect.map(Context.get(RealtimeClient.RealtimeClient)), Effect.orDie)
  yield* client.stateChanges.pipe(
    Stream.drop(1),
    Stream.runForEach((state) => Effect.log(`socket: ${state._tag}${"reason" in state ? ` (${state.reason})` : ""}`)),
    Effect.forkScoped
  )
  const room = yield* client.channel("field-team")
  yield* room.subscribe
  const started = Date.now()

  // the device loses its network; the server notices the socket gone
  network.set(false)
  yield* server.value.dropConnection({ abrupt: true })
  yield* client.stateChanges.pipe(Stream.filter((s) => s._tag === "Offline"), Stream.runHead)
  yield* Effect.sleep("300 millis")
  yield* Effect.log(`offline: ${(yield* server.value.state).stats.connectionsOpened} connection opened so far`)

  // the network is back: the client reconnects now, although its schedule says an hour
  network.set(true)
  yield* room.statusChanges.pipe(Stream.filter((s) => s._tag === "Subscribed" && s.rejoined), Stream.runHead)
  yield* Effect.log(`back online: subscribed again after ${Date.now() - started} ms, not an hour`)
}).pipe(Effect.scoped, Effect.timeout("15 seconds"), Effect.provide(EndpointLive))

NodeRuntime.runMain(program)
