/**
 * What the Effect runtime itself costs on the paths the benchmark measures, kept for the record
 * (bench/results and the README quote it). `node --expose-gc --import tsx bench/effect-costs.ts`.
 *
 * - heap per running consumer: a fiber blocked on `Effect.never`, a bare `Mailbox.toStream`
 *   drained by `Stream.runForEachChunk`, and the same through `Stream.unwrapScoped` (what a
 *   channel's streams used before), each forked into a scope, 2,000 of them;
 * - CPU: `Deferred.unsafeMake`, one wait through a Deferred against one through `Effect.async`,
 *   and `Effect.forEach` with unbounded concurrency per item (how an app subscribes many channels
 *   at once).
 */
import { Deferred, Effect, Exit, FiberId, Mailbox, Scope, Stream } from "effect"

const N = 2000
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error("run with node --expose-gc")

const settled = async () => {
  for (let i = 0; i < 4; i++) {
    gc()
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return process.memoryUsage().heapUsed
}

let received = 0
const drain = <E>(stream: Stream.Stream<unknown, E>) =>
  Stream.runForEachChunk(stream, (chunk) => Effect.sync(() => received += chunk.length))

const consumers: ReadonlyArray<readonly [string, Effect.Effect<unknown, never, Scope.Scope>]> = [
  ["fiber blocked on Effect.never", Effect.forkScoped(Effect.never)],
  [
    "Mailbox.toStream + runForEachChunk",
    Effect.flatMap(Mailbox.make<unknown>(), (mailbox) => Effect.forkScoped(drain(Mailbox.toStream(mailbox))))
  ],
  [
    "the same through Stream.unwrapScoped",
    Effect.forkScoped(drain(Stream.unwrapScoped(Effect.map(Mailbox.make<unknown>(), Mailbox.toStream))))
  ]
]

const heapPer = async (make: Effect.Effect<unknown, never, Scope.Scope>) => {
  const scope = Effect.runSync(Scope.make())
  const many = (n: number) =>
    Scope.extend(Effect.forEach(Array.from({ length: n }), () => make, { discard: true }), scope)
  await Effect.runPromise(many(50))
  const before = await settled()
  await Effect.runPromise(many(N))
  const after = await settled()
  await Effect.runPromise(Scope.close(scope, Exit.void))
  return (after - before) / N / 1024
}

const cpuPer = async (effect: Effect.Effect<unknown>, items: number) => {
  let best = Infinity
  for (let round = 0; round < 5; round++) {
    const t0 = performance.now()
    await Effect.runPromise(effect)
    best = Math.min(best, performance.now() - t0)
  }
  return (best / items) * 1000
}

const main = async () => {
  console.log("heap per running consumer (KB)")
  for (const [name, make] of consumers) console.log(`  ${(await heapPer(make)).toFixed(2).padStart(6)}  ${name}`)
  const M = 20_000
  const makes = Effect.sync(() => {
    for (let i = 0; i < M; i++) Deferred.unsafeMake<void>(FiberId.none)
  })
  const viaDeferred = Effect.forEach(Array.from({ length: M }), () => {
    const deferred = Deferred.unsafeMake<number>(FiberId.none)
    queueMicrotask(() => Deferred.unsafeDone(deferred, Exit.succeed(1)))
    return Deferred.await(deferred)
  }, { discard: true })
  const viaAsync = Effect.forEach(Array.from({ length: M }), () =>
    Effect.async<number>((resume) => {
      queueMicrotask(() => resume(Exit.succeed(1)))
    }), { discard: true })
  const forEachUnbounded = Effect.forEach(Array.from({ length: N }), () => Effect.yieldNow(), {
    concurrency: "unbounded",
    discard: true
  })
  console.log("CPU (µs, best of 5)")
  console.log(`  ${(await cpuPer(makes, M)).toFixed(2).padStart(6)}  Deferred.unsafeMake`)
  console.log(`  ${(await cpuPer(viaDeferred, M)).toFixed(2).padStart(6)}  one wait through a Deferred`)
  console.log(`  ${(await cpuPer(viaAsync, M)).toFixed(2).padStart(6)}  one wait through Effect.async`)
  console.log(
    `  ${(await cpuPer(forEachUnbounded, N)).toFixed(2).padStart(6)}  Effect.forEach, unbounded concurrency, per item`
  )
}

main()
