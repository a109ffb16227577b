/**
 * A reproduction, kept for the record: the same 200,000 ws frames consumed through different
 * Effect constructions, with the young-generation GC time (PerformanceObserver "gc" entries) and
 * the CPU of each. `tsx bench/gc-survivors.ts [mode ...]`; add `--trace-gc-nvp` to node to see
 * `new_space_survived` per scavenge.
 *
 * Finding (Effect 3.22, Node 20): a Mailbox read through a Stream and a sink (`Mailbox.toStream`
 * or `Stream.repeatEffectChunkOption(mailbox.takeAll)`, then `Stream.runForEachChunk`) keeps every
 * chunk processed since the previous scavenge reachable from promoted, dead objects: ~1.9 MB
 * survives each scavenge (everything received since the last one) and is promoted, where the same
 * Mailbox drained by a `takeAll` loop, or pulled with `Stream.toPull`, or a `Stream.fromQueue`,
 * leaves 0.1–0.2 MB. A full GC frees it all (no leak), but the scavenges cost 3–5 ms instead of
 * ~0.7 ms, and the promoted garbage needs mark-compacts.
 */
import { Chunk, Deferred, Effect, FiberId, Mailbox, Option, Queue, Stream } from "effect"
import { PerformanceObserver } from "node:perf_hooks"
import WebSocket, { WebSocketServer } from "ws"
import { buildFlood } from "./server.js"
import { floodSpec, sizes } from "./shared.js"

type Mode = "mailbox-stream" | "mailbox-loop" | "mailbox-pull" | "queue-stream" | "deferred-stream" | "async-stream"
const modes: ReadonlyArray<Mode> = [
  "mailbox-stream",
  "mailbox-loop",
  "mailbox-pull",
  "queue-stream",
  "deferred-stream",
  "async-stream"
]
const N = sizes.inbound

const run = (mode: Mode, port: number) =>
  Effect.scoped(Effect.gen(function*() {
    let seen = 0
    const done = yield* Deferred.make<void>()
    const see = (p: unknown) => {
      if ((p as { payload: { seq: number } }).payload.seq >= 0) seen++
      if (seen === N) Deferred.unsafeDone(done, Effect.void)
    }
    let offer: (payload: unknown) => void
    if (mode === "deferred-stream" || mode === "async-stream") {
      let pending: Array<unknown> = []
      let waiting: Deferred.Deferred<void> | undefined
      let wake: ((e: Effect.Effect<void>) => void) | undefined
      offer = (p) => {
        pending.push(p)
        if (waiting !== undefined) {
          const w = waiting
          waiting = undefined
          Deferred.unsafeDone(w, Effect.void)
        }
        if (wake !== undefined) {
          const w = wake
          wake = undefined
          w(Effect.void)
        }
      }
      const takeAll: Effect.Effect<Chunk.Chunk<unknown>, Option.Option<never>> = Effect.suspend(() => {
        if (pending.length > 0) {
          const out = pending
          pending = []
          return Effect.succeed(Chunk.unsafeFromArray(out))
        }
        const wait = mode === "deferred-stream"
          ? Deferred.await(waiting = Deferred.unsafeMake<void>(FiberId.none))
          : Effect.async<void>((resume) => {
            wake = resume
          })
        return Effect.zipRight(wait, takeAll)
      })
      yield* Stream.repeatEffectChunkOption(takeAll).pipe(
        Stream.runForEachChunk((c) => Effect.sync(() => Array.from(c).forEach(see))),
        Effect.forkScoped
      )
    } else if (mode === "queue-stream") {
      const queue = yield* Queue.unbounded<unknown>()
      offer = (p) => queue.unsafeOffer(p)
      yield* Stream.fromQueue(queue).pipe(
        Stream.runForEachChunk((c) => Effect.sync(() => c.pipe((x) => Array.from(x)).forEach(see))),
        Effect.forkScoped
      )
    } else {
      const mailbox = yield* Mailbox.make<unknown>()
      offer = (p) => mailbox.unsafeOffer(p)
      if (mode === "mailbox-stream") {
        yield* Mailbox.toStream(mailbox).pipe(
          Stream.runForEachChunk((c) => Effect.sync(() => Array.from(c).forEach(see))),
          Effect.forkScoped
        )
      } else if (mode === "mailbox-loop") {
        yield* Effect.gen(function*() {
          while (true) Array.from((yield* mailbox.takeAll)[0]).forEach(see)
        }).pipe(Effect.forkScoped)
      } else {
        yield* Effect.gen(function*() {
          const pull = yield* Stream.toPull(Mailbox.toStream(mailbox))
          while (true) Array.from(yield* pull).forEach(see)
        }).pipe(Effect.scoped, Effect.forkScoped)
      }
    }
    let scavengeMs = 0
    const observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        if ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === 1) {
          scavengeMs += entry.duration
        }
      }
    })
    observer.observe({ entryTypes: ["gc"] })
    const ws = new WebSocket(`ws://127.0.0.1:${port}`)
    ws.addEventListener("message", (event) => offer((JSON.parse(String(event.data)) as Array<unknown>)[4]))
    const t0 = performance.now()
    const cpu0 = process.cpuUsage()
    yield* Deferred.await(done)
    const cpu = process.cpuUsage(cpu0)
    observer.disconnect()
    ws.close()
    console.log(
      `${mode.padEnd(16)} ${(performance.now() - t0).toFixed(0).padStart(5)} ms, CPU ${
        ((cpu.user + cpu.system) / N).toFixed(2)
      } µs/msg, scavenges ${scavengeMs.toFixed(0)} ms`
    )
  }))

const main = async () => {
  const frames = buildFlood(floodSpec("inbound", "measure"))
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  await new Promise((resolve) => wss.once("listening", resolve))
  wss.on("connection", (_ws, request) => {
    setTimeout(() => request.socket.write(frames), 100)
  })
  const address = wss.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  const selected = process.argv.slice(2).filter((m): m is Mode => modes.includes(m as Mode))
  for (const mode of selected.length > 0 ? selected : modes) await Effect.runPromise(run(mode, port))
  await new Promise((resolve) => wss.close(resolve))
}

main()
