/**
 * The Effect 4 edition, over `ws` (`NodeRealtime.layer`), as an Effect 4 app would use it: the same
 * scenarios as `bench/clients/ours.ts` (the Effect 3 edition), run by `bench/child.ts` as the client
 * `ours-effect4`. It lives under `effect4/` so that `effect` resolves to Effect 4.
 */
import { Deferred, Effect, Fiber, Stream } from "effect"
import {
  BROADCAST_EVENT,
  channelConfig,
  fanInChannel,
  floodMetrics,
  type FloodName,
  heapSnapshot,
  INBOUND_CHANNEL,
  latencyMetrics,
  mark,
  measuredPerTopic,
  memoryChannel,
  memoryMetrics,
  OrderCheck,
  payloadOf,
  profileStart,
  profileStop,
  ready,
  RTT_CHANNEL,
  type RunResult,
  type ScenarioName,
  type SeqPayload,
  settledMemory,
  sizes,
  subscribeChannel,
  subscribeWarmup,
  warmupChannel,
  warmupPerTopic
} from "../../bench/shared.js"
import { RealtimeClient } from "../src/index.js"
import { NodeRealtime } from "../src/node/index.js"

const connected = Effect.gen(function*() {
  const client = yield* RealtimeClient.RealtimeClient
  yield* client.connect
  yield* client.stateChanges.pipe(Stream.filter((s) => s._tag === "Open"), Stream.take(1), Stream.runDrain)
  return client
})

const flood = (flood: FloodName, names: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const client = yield* RealtimeClient.RealtimeClient
    const checks = names.map(() => new OrderCheck())
    const warmup = warmupPerTopic(flood)
    const perChannel = warmup + measuredPerTopic(flood)
    const warmTotal = names.length * warmup
    const measured = names.length * measuredPerTopic(flood)
    const warmed = yield* Deferred.make<void>()
    let seen = 0
    let chunks = 0
    let maxChunk = 0
    const rooms = yield* Effect.forEach(names, (name) => client.channel(name, channelConfig))
    const fibers = yield* Effect.forEach(rooms, (room, i) => {
      const check = checks[i]!
      return room.broadcast("*").pipe(
        Stream.take(perChannel),
        Stream.runForEachArray((chunk) =>
          Effect.sync(() => {
            chunks++
            if (chunk.length > maxChunk) maxChunk = chunk.length
            for (const b of chunk) check.see((b.payload as SeqPayload).seq)
            const before = seen
            seen += chunk.length
            if (before < warmTotal && seen >= warmTotal) Deferred.doneUnsafe(warmed, Effect.void)
          })
        ),
        Effect.forkChild({ startImmediately: true })
      )
    })
    yield* Effect.forEach(rooms, (room) => room.subscribe, { concurrency: "unbounded", discard: true })
    if (warmTotal > 0) {
      ready(flood, "warmup")
      yield* Deferred.await(warmed)
    }
    const start = mark()
    ready(flood, "measure")
    yield* Fiber.joinAll(fibers)
    const metrics = floodMetrics(start, measured)
    const errors = checks.reduce((n, c) => n + c.errors, 0)
    return {
      valid: errors === 0 && seen === warmTotal + measured,
      detail: errors === 0 ? undefined : `${errors} out of order`,
      metrics: { ...metrics, chunks, maxChunk }
    }
  })

const joinAll = (client: RealtimeClient.RealtimeClient, names: ReadonlyArray<string>) =>
  Effect.forEach(
    names,
    (name) => client.channel(name, channelConfig).pipe(Effect.flatMap((room) => room.subscribe)),
    { concurrency: "unbounded", discard: true }
  )

const subscribe = Effect.gen(function*() {
  const client = yield* connected
  yield* joinAll(client, subscribeWarmup())
  profileStart()
  const t0 = performance.now()
  const times = yield* Effect.forEach(
    Array.from({ length: sizes.subscribe }, (_, i) => subscribeChannel(i)),
    (name) =>
      client.channel(name, channelConfig).pipe(
        Effect.flatMap((room) => room.subscribe),
        Effect.map(() => performance.now() - t0)
      ),
    { concurrency: "unbounded" }
  )
  const totalMs = performance.now() - t0
  profileStop("subscribe")
  return { valid: times.length === sizes.subscribe, metrics: { totalMs, ...latencyMetrics(times) } }
})

const rtt = Effect.gen(function*() {
  const client = yield* connected
  const room = yield* client.channel(RTT_CHANNEL, channelConfig)
  let waiting = -1
  let echoed: Deferred.Deferred<void> | undefined
  let echoAt = 0
  yield* room.broadcast("*").pipe(
    Stream.runForEachArray((chunk) =>
      Effect.sync(() => {
        for (const b of chunk) {
          if ((b.payload as SeqPayload).seq === waiting) {
            echoAt = performance.now()
            if (echoed !== undefined) Deferred.doneUnsafe(echoed, Effect.void)
          }
        }
      })
    ),
    Effect.forkScoped
  )
  yield* room.subscribe
  const samples: Array<number> = []
  profileStart()
  for (let i = 0; i < sizes.rttWarmup + sizes.rtt; i++) {
    const echo = Deferred.makeUnsafe<void>()
    echoed = echo
    waiting = i
    const t0 = performance.now()
    yield* room.send(BROADCAST_EVENT, payloadOf(i))
    yield* Deferred.await(echo)
    if (i >= sizes.rttWarmup) samples.push(echoAt - t0)
  }
  profileStop("rtt")
  return { valid: samples.length === sizes.rtt, metrics: latencyMetrics(samples) }
})

const memory = Effect.gen(function*() {
  const client = yield* connected
  let received = 0
  const joinAll = (names: ReadonlyArray<string>) =>
    Effect.forEach(names, (name) =>
      Effect.gen(function*() {
        const room = yield* client.channel(name, channelConfig)
        yield* room.broadcast("*").pipe(
          Stream.runForEachArray((chunk) => Effect.sync(() => received += chunk.length)),
          Effect.forkScoped
        )
        yield* room.subscribe
      }), { concurrency: "unbounded", discard: true })
  yield* joinAll(Array.from({ length: sizes.memoryWarmup }, (_, i) => warmupChannel(i)))
  const before = yield* Effect.promise(settledMemory)
  yield* joinAll(Array.from({ length: sizes.memory }, (_, i) => memoryChannel(i)))
  const after = yield* Effect.promise(settledMemory)
  yield* Effect.promise(() => heapSnapshot("ours-effect4"))
  const channels = yield* client.channels
  return {
    valid: channels.length === sizes.memory + sizes.memoryWarmup,
    metrics: memoryMetrics(before, after, sizes.memory)
  }
})

const program = (scenario: ScenarioName): Effect.Effect<RunResult, unknown, RealtimeClient.RealtimeClient> => {
  switch (scenario) {
    case "inbound":
      return Effect.scoped(flood("inbound", [INBOUND_CHANNEL]))
    case "inbound-binary":
      return Effect.scoped(flood("inbound-binary", [INBOUND_CHANNEL]))
    case "fan-in":
      return Effect.scoped(flood("fan-in", Array.from({ length: sizes.fanInChannels }, (_, i) => fanInChannel(i))))
    case "subscribe":
      return Effect.scoped(subscribe)
    case "rtt":
      return Effect.scoped(rtt)
    case "memory":
      return Effect.scoped(memory)
  }
}

export const run = (scenario: ScenarioName, url: string): Promise<RunResult> =>
  Effect.runPromise(
    program(scenario).pipe(
      Effect.provide(NodeRealtime.layer({ url, apiKey: "anon", httpBroadcast: false }))
    )
  )
