/**
 * A reproduction, kept for the record: 300,000 parsed JSON messages offered to a queue in batches of
 * 600 (one batch per I/O turn, as socket reads arrive), consumed through different Effect
 * constructions; prints the young-generation GC time (PerformanceObserver "gc" entries) and the
 * heap at the end, each mode in its own process. `node --import tsx bench/gc-survivors.ts [mode ...]`.
 *
 * Finding (Effect 3.22, Node 20): when the consumer's per-chunk Effect holds the chunk
 * (`Stream.runForEachChunk(s, (chunk) => Effect.sync(() => use(chunk)))`, `Stream.runForEach`, or
 * `Stream.mapChunksEffect`), everything received since the previous scavenge is still reachable at
 * the next one and is promoted: scavenges take ~2.5x as long and the old generation grows until a
 * mark-compact. The same stream drained with a per-chunk Effect that does not hold the chunk
 * (`(chunk) => { use(chunk); return Effect.void }`), through `Stream.mapChunks` + `runDrain`, through
 * `Stream.toPull`, or by a plain fiber loop, leaves almost nothing. The SDK's own decoding is
 * therefore a synchronous `mapChunks`; what the app's sink does is the app's.
 */
import { Chunk, Effect, Fiber, Stream } from "effect"
import { execFileSync } from "node:child_process"
import { PerformanceObserver } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { Inbox } from "../src/internal/inbox.js"

const N = 300_000
const BATCH = 600

interface Message {
  readonly event: string
  readonly payload: { readonly seq: number; readonly text: string }
}

const modes = {
  "runForEachChunk (sync holds the chunk)": (stream: Stream.Stream<Message>, use: (c: Chunk.Chunk<Message>) => void) =>
    Stream.runForEachChunk(stream, (chunk) => Effect.sync(() => use(chunk))),
  "runForEach": (stream: Stream.Stream<Message>, use: (c: Chunk.Chunk<Message>) => void) =>
    Stream.runForEach(stream, (message) => Effect.sync(() => use(Chunk.of(message)))),
  "runForEachChunk (returns Effect.void)": (
    stream: Stream.Stream<Message>,
    use: (c: Chunk.Chunk<Message>) => void
  ) =>
    Stream.runForEachChunk(stream, (chunk) => {
      use(chunk)
      return Effect.void
    }),
  "mapChunks + runDrain": (stream: Stream.Stream<Message>, use: (c: Chunk.Chunk<Message>) => void) =>
    Stream.runDrain(Stream.mapChunks(stream, (chunk) => {
      use(chunk)
      return chunk
    })),
  "toPull loop": (stream: Stream.Stream<Message>, use: (c: Chunk.Chunk<Message>) => void) =>
    Effect.scoped(Effect.gen(function*() {
      const pull = yield* Stream.toPull(stream)
      while (true) use(yield* pull)
    })).pipe(Effect.catchAll(() => Effect.void))
} as const

const run = async (name: keyof typeof modes) => {
  // the queue the SDK's streams read
  const queue = new Inbox<Message>(Number.POSITIVE_INFINITY)
  let seen = 0
  const use = (chunk: Chunk.Chunk<Message>) => {
    for (const message of chunk) if (message.payload.seq >= 0) seen++
  }
  let scavengeMs = 0
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === 1) scavengeMs += entry.duration
    }
  })
  observer.observe({ entryTypes: ["gc"] })
  const fiber = Effect.runFork(modes[name](Stream.repeatEffectChunkOption(queue.pull), use))
  const t0 = performance.now()
  let i = 0
  await new Promise<void>((resolve) => {
    const read = () => {
      for (let k = 0; k < BATCH && i < N; k++, i++) {
        queue.offer(JSON.parse(`{"event":"e","payload":{"seq":${i},"text":"hello world hello world hello"}}`), k === 0)
      }
      setImmediate(() => {
        queue.wake()
        if (i < N) return read()
        queue.end()
        resolve()
      })
    }
    read()
  })
  await Effect.runPromise(Fiber.await(fiber))
  const ms = performance.now() - t0
  observer.disconnect()
  const heapMB = process.memoryUsage().heapUsed / 1024 / 1024
  console.log(
    `${name.padEnd(40)} ${ms.toFixed(0).padStart(5)} ms, scavenges ${scavengeMs.toFixed(0).padStart(4)} ms, heap ${
      heapMB.toFixed(0)
    } MB (${seen === N ? "all seen" : `${seen} seen`})`
  )
}

// each mode in a fresh process: what one run leaves in the old generation changes the next
const main = async () => {
  const selected = process.argv.slice(2).filter((m): m is keyof typeof modes => m in modes)
  if (selected.length === 1) return run(selected[0]!)
  for (const name of selected.length > 0 ? selected : (Object.keys(modes) as Array<keyof typeof modes>)) {
    execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), name], { stdio: "inherit" })
  }
}

main()
