/**
 * Reconnect and heartbeat policies reach the batteries' client whichever way they are given: as
 * options, provided to the battery's layer, or provided outside it. Provided inside an already built
 * client (the order that used to drop them silently), they cannot reach it, and say so in a warning.
 * Real sockets: `NodeRealtime.layer` against the embedded server on 127.0.0.1.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Logger, Option, Schedule, Stream } from "effect"
import * as Heartbeat from "../src/Heartbeat.js"
import * as NodeRealtime from "../src/node/NodeRealtime.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as Reconnect from "../src/Reconnect.js"
import * as RealtimeServer from "../src/testing/RealtimeServer.js"

const custom = { reconnect: Schedule.spaced("123 millis") }
const fastBeat = { interval: "40 millis" } as const
const policyLayers = Layer.mergeAll(Reconnect.layer(custom), Heartbeat.layer(fastBeat))

interface Observed {
  /** Whether a heartbeat went out within `heartbeatWithin` of subscribing. */
  readonly heartbeat: boolean
  /** The delay of the first reconnect after the server dropped the socket. */
  readonly reconnectDelay: number
}

// subscribes, waits for a heartbeat, then has the server drop the socket and reads the delay
const probe = (server: RealtimeServer.Server, heartbeatWithin: Duration.Input) =>
  Effect.gen(function*() {
    const client = yield* RealtimeClient.RealtimeClient
    const room = yield* client.channel("policies")
    const beat = yield* client.heartbeats.pipe(
      Stream.filter((status) => status._tag === "Sent"),
      Stream.runHead,
      Effect.timeout(heartbeatWithin),
      Effect.option,
      Effect.forkChild({ startImmediately: true })
    )
    yield* room.subscribe
    const heartbeat = Option.isSome(Option.flatten(yield* Fiber.join(beat)))
    const reconnecting = yield* client.stateChanges.pipe(
      Stream.filter((state) => state._tag === "Reconnecting"),
      Stream.runHead,
      Effect.forkChild({ startImmediately: true })
    )
    yield* server.dropConnection({ code: 1011, reason: "fault injected" })
    const state = Option.getOrThrow(yield* Fiber.join(reconnecting).pipe(Effect.timeout("20 seconds")))
    assert.strictEqual(state._tag, "Reconnecting")
    return {
      heartbeat,
      reconnectDelay: state._tag === "Reconnecting" ? Duration.toMillis(state.delay) : -1
    } satisfies Observed
  }).pipe(Effect.scoped)

// runs `use` against a fresh embedded server, collecting the policy warnings logged meanwhile
const withServer = <A, E>(
  use: (server: RealtimeServer.Server, options: NodeRealtime.Options) => Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    const warnings: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      const text = Array.isArray(message) ? message.join(" ") : String(message)
      if (logLevel === "Warn" && text.includes(".layer was provided")) warnings.push(text)
    })
    const server = yield* RealtimeServer.makeListen()
    const result = yield* use(server, { url: server.url, apiKey: server.apiKey, httpBroadcast: false }).pipe(
      Effect.provide(Logger.layer([logger]))
    )
    return { result, warnings }
  }).pipe(Effect.scoped)

describe("policies and the batteries", () => {
  it.live("options: `reconnect` and `heartbeat` in NodeRealtime.layer", () =>
    Effect.gen(function*() {
      const { result, warnings } = yield* withServer((server, options) =>
        probe(server, "10 seconds").pipe(
          Effect.provide(NodeRealtime.layer({ ...options, reconnect: custom, heartbeat: fastBeat }))
        )
      )
      assert.deepStrictEqual(result, { heartbeat: true, reconnectDelay: 123 })
      assert.deepStrictEqual(warnings, [])
    }), 60_000)

  it.live("layers provided to the battery's layer (Layer.provide)", () =>
    Effect.gen(function*() {
      const { result, warnings } = yield* withServer((server, options) =>
        probe(server, "10 seconds").pipe(
          Effect.provide(NodeRealtime.layer(options).pipe(Layer.provide(policyLayers)))
        )
      )
      assert.deepStrictEqual(result, { heartbeat: true, reconnectDelay: 123 })
      assert.deepStrictEqual(warnings, [])
    }), 60_000)

  it.live(
    "layers provided outside the battery: Effect.provide(battery), then Effect.provide(policies)",
    () =>
      Effect.gen(function*() {
        const { result, warnings } = yield* withServer((server, options) =>
          probe(server, "10 seconds").pipe(
            Effect.provide(NodeRealtime.layer(options)),
            Effect.provide(policyLayers)
          )
        )
        assert.deepStrictEqual(result, { heartbeat: true, reconnectDelay: 123 })
        assert.deepStrictEqual(warnings, [])
      }),
    60_000
  )

  it.live(
    "layers provided inside the built client: not applied, and a warning for each says how to fix it",
    () =>
      Effect.gen(function*() {
        const { result, warnings } = yield* withServer((server, options) =>
          probe(server, "200 millis").pipe(
            Effect.provide(policyLayers),
            Effect.provide(NodeRealtime.layer(options))
          )
        )
        // the client kept realtime-js's first delay
        assert.strictEqual(result.reconnectDelay, 1000)
        assert.strictEqual(warnings.length, 2)
        assert.isTrue(warnings.some((w) => w.startsWith("Reconnect.layer was provided below a RealtimeClient")))
        assert.isTrue(warnings.some((w) => w.startsWith("Heartbeat.layer was provided below a RealtimeClient")))
        for (const warning of warnings) assert.include(warning, "Layer.provide(")
      }),
    60_000
  )

  it.live("the options win over policy layers in context, in either order", () =>
    Effect.gen(function*() {
      const slow = Layer.mergeAll(
        Reconnect.layer({ reconnect: Schedule.spaced("7 seconds") }),
        Heartbeat.layer({ interval: "1 hour" })
      )
      const { result: outside } = yield* withServer((server, options) =>
        probe(server, "10 seconds").pipe(
          Effect.provide(NodeRealtime.layer({ ...options, reconnect: custom, heartbeat: fastBeat })),
          Effect.provide(slow)
        )
      )
      const { result: provided } = yield* withServer((server, options) =>
        probe(server, "10 seconds").pipe(
          Effect.provide(
            NodeRealtime.layer({ ...options, reconnect: custom, heartbeat: fastBeat }).pipe(Layer.provide(slow))
          )
        )
      )
      assert.deepStrictEqual(outside, { heartbeat: true, reconnectDelay: 123 })
      assert.deepStrictEqual(provided, { heartbeat: true, reconnectDelay: 123 })
    }), 60_000)
})
