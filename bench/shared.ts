/**
 * What the bench parent, its server and its client processes share: sizes, topic names, payloads,
 * the messages they exchange over IPC, and the timing helpers.
 */
import * as Fs from "node:fs"
import * as Inspector from "node:inspector"
import * as Path from "node:path"
import * as Binary from "../src/core/protocol/binary.js"

export const clients = ["ours", "ours-effect4", "realtime-js", "floor"] as const
export type ClientName = (typeof clients)[number]

/** Our two editions: Effect 3 (`src/`) and Effect 4 (`effect4/src/`). */
export const editions = ["ours", "ours-effect4"] as const satisfies ReadonlyArray<ClientName>
export type EditionName = (typeof editions)[number]

export const scenarios = ["inbound", "inbound-binary", "fan-in", "subscribe", "rtt", "memory"] as const
export type ScenarioName = (typeof scenarios)[number]

export const sizes = {
  inbound: 200_000,
  fanInChannels: 100,
  fanInPerChannel: 2_000,
  subscribe: 500,
  rtt: 2_000,
  rttWarmup: 200,
  memory: 1_000,
  memoryWarmup: 20
} as const

/**
 * Frames sent (and seen) before each flood's measured part, spread over its topics like it;
 * `npm run bench -- --no-warmup` (BENCH_FLOOD_WARMUP=0, read when called) measures cold.
 */
export const floodWarmup = (): number => Number(process.env.BENCH_FLOOD_WARMUP ?? 50_000)

export const BROADCAST_EVENT = "e"
export const INBOUND_CHANNEL = "bench"
export const RTT_CHANNEL = "rtt"
export const fanInChannel = (i: number) => `fan-${i}`
export const subscribeChannel = (i: number) => `sub-${i}`
export const memoryChannel = (i: number) => `mem-${i}`
export const warmupChannel = (i: number) => `warm-${i}`
/**
 * Channels joined (and kept) before the measured subscribe: JIT warm-up, as the floods, rtt and
 * memory have theirs; none with `--no-warmup`.
 */
export const subscribeWarmup = (): ReadonlyArray<string> =>
  Array.from({ length: process.env.BENCH_FLOOD_WARMUP === "0" ? 0 : 100 }, (_, i) => `warm-sub-${i}`)
export const topicOf = (name: string) => `realtime:${name}`

/** The channel config every client joins with (as the usage). */
export const channelConfig = { broadcast: { self: true, ack: true } } as const

const padding = "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor"

/** A broadcast payload of about 100 bytes of JSON, with its sequence number. */
export const payloadOf = (seq: number) => ({ seq, user: "ada", x: 123, y: 456, text: padding.slice(0, 56) })

export interface SeqPayload {
  readonly seq: number
}

/** The text frame of a broadcast, as the server sends it to vsn 2.0.0 sockets. */
export const textBroadcastFrame = (topic: string, seq: number): string =>
  JSON.stringify([null, null, topic, "broadcast", {
    type: "broadcast",
    event: BROADCAST_EVENT,
    payload: payloadOf(seq)
  }])

/** The kind 4 binary frame of a broadcast (JSON payload). */
export const binaryBroadcastFrame = (topic: string, seq: number): Uint8Array => {
  const frame = Binary.encodeUserBroadcast({ topic, event: BROADCAST_EVENT, payload: payloadOf(seq) })
  if (!frame.ok) throw new Error(frame.error.message)
  return frame.value
}

/** Which flood the parent sends once a client is ready. */
export type FloodName = "inbound" | "inbound-binary" | "fan-in"

/**
 * A flood is sent in two phases: a warm-up (`floodWarmup()` frames, not measured: JIT and GC
 * heuristics settle, as in a long-running client), then the measured frames. Sequence numbers run
 * on across the phases, per topic.
 */
export type FloodPhase = "warmup" | "measure"

export interface FloodSpec {
  readonly binary: boolean
  readonly topics: ReadonlyArray<string>
  readonly perTopic: number
  readonly firstSeq: number
}

const floodShapes: Record<FloodName, { binary: boolean; topics: ReadonlyArray<string>; perTopic: number }> = {
  inbound: { binary: false, topics: [topicOf(INBOUND_CHANNEL)], perTopic: sizes.inbound },
  "inbound-binary": { binary: true, topics: [topicOf(INBOUND_CHANNEL)], perTopic: sizes.inbound },
  "fan-in": {
    binary: false,
    topics: Array.from({ length: sizes.fanInChannels }, (_, i) => topicOf(fanInChannel(i))),
    perTopic: sizes.fanInPerChannel
  }
}

/** Measured frames per topic of a flood. */
export const measuredPerTopic = (name: FloodName): number => floodShapes[name].perTopic

/** Warm-up frames per topic of a flood. */
export const warmupPerTopic = (name: FloodName): number => Math.ceil(floodWarmup() / floodShapes[name].topics.length)

export const floodSpec = (name: FloodName, phase: FloodPhase): FloodSpec => {
  const shape = floodShapes[name]
  const warmup = warmupPerTopic(name)
  return phase === "warmup"
    ? { ...shape, perTopic: warmup, firstSeq: 0 }
    : { ...shape, firstSeq: warmup }
}

export const floodNames: ReadonlyArray<FloodName> = ["inbound", "inbound-binary", "fan-in"]

/** Child → parent. */
export type ChildMessage =
  | { readonly type: "ready"; readonly flood: FloodName; readonly phase: FloodPhase }
  | { readonly type: "result"; readonly result: RunResult }
  | { readonly type: "error"; readonly message: string }

/** One run of one client in one scenario. `valid` is false when it missed or misordered frames. */
export interface RunResult {
  readonly valid: boolean
  readonly detail?: string | undefined
  readonly metrics: Record<string, number>
}

// -------------------------------------------------------------------------------------
// measuring
// -------------------------------------------------------------------------------------

export interface Mark {
  readonly time: number
  readonly cpu: NodeJS.CpuUsage
}

/** Where `--profile` wants the profile of the measured window (set by the parent). */
const profileDir = process.env.BENCH_PROFILE_DIR
let session: Inspector.Session | undefined

/** Starts the CPU profiler when profiling (the measured window only, not start-up). */
export const profileStart = (): void => {
  if (profileDir === undefined || session !== undefined) return
  session = new Inspector.Session()
  session.connect()
  session.post("Profiler.enable")
  session.post("Profiler.setSamplingInterval", { interval: Number(process.env.BENCH_PROFILE_INTERVAL ?? 50) })
  session.post("Profiler.start")
  if (process.env.BENCH_PROFILE_HEAP === "1") {
    session.post("HeapProfiler.enable")
    session.post("HeapProfiler.startSampling", {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true
    })
  }
}

/** Stops the CPU profiler and writes `<dir>/<name>.cpuprofile`. */
export const profileStop = (name: string): void => {
  const current = session
  if (profileDir === undefined || current === undefined) return
  session = undefined
  if (process.env.BENCH_PROFILE_HEAP === "1") {
    current.post("HeapProfiler.stopSampling", (error, result) => {
      if (error === null) {
        Fs.mkdirSync(profileDir, { recursive: true })
        Fs.writeFileSync(Path.join(profileDir, `${name}.heapprofile`), JSON.stringify(result.profile))
      }
    })
  }
  current.post("Profiler.stop", (error, result) => {
    if (error === null) {
      Fs.mkdirSync(profileDir, { recursive: true })
      Fs.writeFileSync(Path.join(profileDir, `${name}.cpuprofile`), JSON.stringify(result.profile))
    }
    current.disconnect()
  })
}

export const mark = (): Mark => {
  profileStart()
  return { time: performance.now(), cpu: process.cpuUsage() }
}

/** msg/s, CPU and peak RSS of a flood that started at `start` and was fully seen now. */
export const floodMetrics = (start: Mark, count: number): Record<string, number> => {
  const ms = performance.now() - start.time
  const cpu = process.cpuUsage(start.cpu)
  profileStop("flood")
  return {
    ms,
    msgPerSec: count / (ms / 1000),
    cpuMs: (cpu.user + cpu.system) / 1000,
    cpuUsPerMsg: (cpu.user + cpu.system) / count,
    peakRssMB: process.resourceUsage().maxRSS / 1024
  }
}

export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index]!
}

export const median = (values: ReadonlyArray<number>): number => {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export const latencyMetrics = (samples: ReadonlyArray<number>): Record<string, number> => ({
  p50Ms: percentile(samples, 50),
  p99Ms: percentile(samples, 99),
  meanMs: samples.reduce((a, b) => a + b, 0) / samples.length
})

/** Heap and RSS after full collections (needs `--expose-gc`). */
export const settledMemory = async (): Promise<{ heap: number; rss: number }> => {
  const gc = (globalThis as { gc?: () => void }).gc
  for (let i = 0; i < 4; i++) {
    gc?.()
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const usage = process.memoryUsage()
  return { heap: usage.heapUsed, rss: usage.rss }
}

/** With `BENCH_HEAP_SNAPSHOT=<dir>`, writes a heap snapshot there (`<client>-memory.heapsnapshot`). */
export const heapSnapshot = async (client: string): Promise<void> => {
  const dir = process.env.BENCH_HEAP_SNAPSHOT
  if (dir === undefined) return
  const V8 = await import("node:v8")
  V8.writeHeapSnapshot(`${dir}/${client}-memory.heapsnapshot`)
}

export const memoryMetrics = (
  before: { heap: number; rss: number },
  after: { heap: number; rss: number },
  channels: number
): Record<string, number> => ({
  heapPerChannelKB: (after.heap - before.heap) / channels / 1024,
  rssPerChannelKB: (after.rss - before.rss) / channels / 1024,
  heapTotalMB: after.heap / 1024 / 1024
})

/** Checks that one channel's frames arrive in order, and counts them. */
export class OrderCheck {
  seen = 0
  errors = 0
  see(seq: number) {
    if (seq !== this.seen) this.errors++
    this.seen++
  }
}

// -------------------------------------------------------------------------------------
// child side of the IPC
// -------------------------------------------------------------------------------------

export const send = (message: ChildMessage): Promise<void> =>
  new Promise((resolve, reject) => {
    if (process.send === undefined) return reject(new Error("not started by the bench runner (no IPC channel)"))
    process.send(message, undefined, {}, (error) => error ? reject(error) : resolve())
  })

/** Tells the parent to send a flood's phase. */
export const ready = (flood: FloodName, phase: FloodPhase): void => {
  process.send?.({ type: "ready", flood, phase } satisfies ChildMessage)
}
