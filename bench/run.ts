/**
 * `npm run bench`: every scenario × client × repetition in its own child process, against one local
 * flood server; medians, ratios to realtime-js and to the raw floor, PASS/FAIL per target. Writes
 * `bench/results/latest.json` and `latest.md` after a full run.
 *
 * Options: `--reps N` (default 5), `--scenarios a,b`, `--clients a,b`, `--no-warmup` (floods measured
 * from the first frame, subscribe with no joins before), `--profile` (children profile their
 * measured window into `bench/profiles/<client>-<scenario>-<time>/*.cpuprofile`; summarise with
 * `tsx bench/profile.ts <file>`), `--tsx` (run the editions' TypeScript through tsx instead).
 *
 * The editions run as their packages ship, compiled by `tsc` (into a temporary folder): realtime-js
 * runs its published JavaScript, and tsx's transform adds a `__name` call to every named closure it
 * creates (a few percent of a subscribe's CPU).
 */
import { execFileSync, fork } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { type BenchServer, buildFlood, startServer } from "./server.js"
import {
  type ChildMessage,
  type ClientName,
  clients,
  type EditionName,
  editions,
  type FloodName,
  floodNames,
  type FloodPhase,
  floodSpec,
  floodWarmup,
  median,
  type RunResult,
  type ScenarioName,
  scenarios,
  sizes,
  subscribeWarmup
} from "./shared.js"

const here = Path.dirname(fileURLToPath(import.meta.url))

const args = process.argv.slice(2)
const option = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : undefined
}
const reps = Number(option("reps") ?? 5)
const selectedScenarios = (option("scenarios")?.split(",") ?? scenarios) as ReadonlyArray<ScenarioName>
const selectedClients = (option("clients")?.split(",") ?? clients) as ReadonlyArray<ClientName>
const profile = args.includes("--profile")
const compiled = !args.includes("--tsx")
// the children read the warm-up size from the environment (see `floodWarmup`)
if (args.includes("--no-warmup")) process.env.BENCH_FLOOD_WARMUP = "0"
const fullRun = selectedScenarios.length === scenarios.length && selectedClients.length === clients.length
for (const s of selectedScenarios) if (!scenarios.includes(s)) throw new Error(`unknown scenario ${s}`)
for (const c of selectedClients) if (!clients.includes(c)) throw new Error(`unknown client ${c}`)
const selectedEditions = editions.filter((e) => selectedClients.includes(e))

const floodCache = new Map<string, Buffer>()
const floodFrames = (name: FloodName, phase: FloodPhase): Buffer => {
  const key = `${name}:${phase}`
  let frames = floodCache.get(key)
  if (frames === undefined) floodCache.set(key, frames = buildFlood(floodSpec(name, phase)))
  return frames
}

const RUN_TIMEOUT_MS = 120_000
const profileDir = Path.join(here, "profiles")
// outside the repo (vitest and git must not see it), with what ESM resolution needs from it
const buildDir = Path.join(Os.tmpdir(), "supabase-realtime-effect-bench")

const root = Path.join(here, "..")

/** Compiles a project's tree (its bench and sources) into `buildDir`, paths kept from the repository root. */
const compileProject = (project: string) =>
  execFileSync(
    process.execPath,
    [
      Path.join(root, "node_modules", "typescript", "bin", "tsc"),
      ...["-p", project, "--noEmit", "false", "--rootDir", root],
      ...["--outDir", buildDir, "--sourceMap", "false", "--declaration", "false", "--incremental", "false"]
    ],
    { stdio: "inherit" }
  )

const linkModules = (from: string, to: string) => {
  if (!Fs.existsSync(to)) Fs.symlinkSync(from, to)
}

const compileAll = () => {
  console.log("compiling the editions with tsc …")
  Fs.rmSync(buildDir, { recursive: true, force: true })
  compileProject(Path.join(root, "tsconfig.json"))
  Fs.writeFileSync(Path.join(buildDir, "package.json"), JSON.stringify({ type: "module" }))
  linkModules(Path.join(root, "node_modules"), Path.join(buildDir, "node_modules"))
  if (selectedEditions.includes("ours-effect4")) {
    // under effect4/, where `effect` resolves to Effect 4
    compileProject(Path.join(root, "effect4", "tsconfig.json"))
    Fs.writeFileSync(Path.join(buildDir, "effect4", "package.json"), JSON.stringify({ type: "module" }))
    linkModules(Path.join(root, "effect4", "node_modules"), Path.join(buildDir, "effect4", "node_modules"))
  }
}

const runChild = (server: BenchServer, client: ClientName, scenario: ScenarioName): Promise<RunResult> =>
  new Promise((resolve, reject) => {
    // plain JS compiled by tsc, as the packages ship (and a profile can attribute its lines)
    const execArgv = compiled ? ["--expose-gc"] : ["--import", "tsx", "--expose-gc"]
    // extra V8/Node flags for the children, e.g. BENCH_CHILD_FLAGS=--trace-gc
    if (process.env.BENCH_CHILD_FLAGS) execArgv.push(...process.env.BENCH_CHILD_FLAGS.split(" "))
    const env = profile
      ? { ...process.env, BENCH_PROFILE_DIR: Path.join(profileDir, `${client}-${scenario}-${Date.now()}`) }
      : process.env
    const entry = compiled ? Path.join(buildDir, "bench", "child.js") : Path.join(here, "child.ts")
    const child = fork(entry, [client, scenario, server.url], { execArgv, env, stdio: "inherit" })
    let result: RunResult | undefined
    let failure: Error | undefined
    const timer = setTimeout(() => {
      failure = new Error(`${client}/${scenario}: no result after ${RUN_TIMEOUT_MS} ms`)
      child.kill("SIGKILL")
    }, RUN_TIMEOUT_MS)
    child.on("message", (message: ChildMessage) => {
      switch (message.type) {
        case "ready":
          server.flood(floodFrames(message.flood, message.phase)).catch((error: Error) => {
            failure = error
            child.kill("SIGKILL")
          })
          return
        case "result":
          result = message.result
          return
        case "error":
          failure = new Error(`${client}/${scenario}: ${message.message}`)
          return
      }
    })
    child.on("exit", (code, signal) => {
      clearTimeout(timer)
      server.dropAll()
      if (result !== undefined) resolve(result)
      else reject(failure ?? new Error(`${client}/${scenario}: exited with ${signal ?? code} and no result`))
    })
  })

// -------------------------------------------------------------------------------------
// what is reported
// -------------------------------------------------------------------------------------

interface MetricSpec {
  readonly key: string
  readonly label: string
  readonly digits: number
}

const primary: Record<ScenarioName, { readonly key: string; readonly higherIsBetter: boolean }> = {
  inbound: { key: "msgPerSec", higherIsBetter: true },
  "inbound-binary": { key: "msgPerSec", higherIsBetter: true },
  "fan-in": { key: "msgPerSec", higherIsBetter: true },
  subscribe: { key: "totalMs", higherIsBetter: false },
  rtt: { key: "p50Ms", higherIsBetter: false },
  memory: { key: "heapPerChannelKB", higherIsBetter: false }
}

const floodColumns: ReadonlyArray<MetricSpec> = [
  { key: "msgPerSec", label: "msg/s", digits: 0 },
  { key: "ms", label: "time ms", digits: 0 },
  { key: "cpuUsPerMsg", label: "CPU µs/msg", digits: 2 },
  { key: "peakRssMB", label: "peak RSS MB", digits: 0 }
]
const columns: Record<ScenarioName, ReadonlyArray<MetricSpec>> = {
  inbound: floodColumns,
  "inbound-binary": floodColumns,
  "fan-in": floodColumns,
  subscribe: [
    { key: "totalMs", label: "total ms", digits: 1 },
    { key: "p50Ms", label: "p50 ms", digits: 1 },
    { key: "p99Ms", label: "p99 ms", digits: 1 }
  ],
  rtt: [
    { key: "p50Ms", label: "p50 ms", digits: 3 },
    { key: "p99Ms", label: "p99 ms", digits: 3 },
    { key: "meanMs", label: "mean ms", digits: 3 }
  ],
  memory: [
    { key: "heapPerChannelKB", label: "heap KB/channel", digits: 2 },
    { key: "rssPerChannelKB", label: "RSS KB/channel", digits: 2 }
  ]
}

const descriptions: Record<ScenarioName, string> = {
  inbound: `${sizes.inbound.toLocaleString("en")} JSON broadcast frames to one channel`,
  "inbound-binary": `${sizes.inbound.toLocaleString("en")} kind-4 binary broadcast frames to one channel`,
  "fan-in": `${sizes.fanInChannels} channels × ${sizes.fanInPerChannel.toLocaleString("en")} frames, interleaved`,
  subscribe: `join ${sizes.subscribe} channels concurrently`,
  rtt: `${sizes.rtt.toLocaleString("en")} sequential broadcasts with ack and self: send → own echo`,
  memory: `${sizes.memory.toLocaleString("en")} joined channels, a broadcast stream each`
}

interface Target {
  readonly name: string
  readonly scenario: ScenarioName
  readonly edition: EditionName
  readonly against: ClientName
  /** `ours / against` of the primary metric must be `>= min` or `<= max`. */
  readonly min?: number
  readonly max?: number
}

const targets: ReadonlyArray<Target> = [
  // the Effect 3 edition
  {
    name: "E3 inbound JSON ≥ 1.0× realtime-js (msg/s)",
    scenario: "inbound",
    edition: "ours",
    against: "realtime-js",
    min: 1.0
  },
  { name: "E3 inbound JSON ≥ 0.85× floor (msg/s)", scenario: "inbound", edition: "ours", against: "floor", min: 0.85 },
  {
    name: "E3 inbound binary ≥ 2× realtime-js (msg/s)",
    scenario: "inbound-binary",
    edition: "ours",
    against: "realtime-js",
    min: 2.0
  },
  {
    name: "E3 fan-in ≥ 1.3× realtime-js (msg/s)",
    scenario: "fan-in",
    edition: "ours",
    against: "realtime-js",
    min: 1.3
  },
  {
    name: "E3 subscribe 500 no slower than realtime-js (total time)",
    scenario: "subscribe",
    edition: "ours",
    against: "realtime-js",
    max: 1.0
  },
  { name: "E3 rtt p50 no worse than realtime-js", scenario: "rtt", edition: "ours", against: "realtime-js", max: 1.0 },
  {
    name: "E3 heap per channel ≤ 0.5× realtime-js",
    scenario: "memory",
    edition: "ours",
    against: "realtime-js",
    max: 0.5
  },
  // the Effect 4 edition (its issue's targets)
  {
    name: "E4 inbound JSON ≥ 1.0× realtime-js (msg/s)",
    scenario: "inbound",
    edition: "ours-effect4",
    against: "realtime-js",
    min: 1.0
  },
  {
    name: "E4 inbound binary ≥ 4× realtime-js (msg/s)",
    scenario: "inbound-binary",
    edition: "ours-effect4",
    against: "realtime-js",
    min: 4.0
  },
  {
    name: "E4 fan-in ≥ 1.3× realtime-js (msg/s)",
    scenario: "fan-in",
    edition: "ours-effect4",
    against: "realtime-js",
    min: 1.3
  },
  {
    name: "E4 subscribe 500 no slower than realtime-js (total time)",
    scenario: "subscribe",
    edition: "ours-effect4",
    against: "realtime-js",
    max: 1.0
  },
  {
    name: "E4 rtt p50 no worse than realtime-js",
    scenario: "rtt",
    edition: "ours-effect4",
    against: "realtime-js",
    max: 1.0
  },
  {
    name: "E4 heap per channel ≤ 1.5× realtime-js",
    scenario: "memory",
    edition: "ours-effect4",
    against: "realtime-js",
    max: 1.5
  }
]

const fmt = (value: number | undefined, digits: number): string =>
  value === undefined || Number.isNaN(value)
    ? "–"
    : value.toLocaleString("en", { minimumFractionDigits: digits, maximumFractionDigits: digits })

const main = async () => {
  if (compiled) compileAll()
  const server = await startServer()
  // built before any run: the flood must start the moment a client is ready
  for (const scenario of selectedScenarios) {
    const name = floodNames.find((n) => n === scenario)
    if (name !== undefined) { for (const phase of ["warmup", "measure"] as const) floodFrames(name, phase) }
  }
  const runs: Array<{ scenario: ScenarioName; client: ClientName; rep: number; result?: RunResult; error?: string }> =
    []
  const started = Date.now()
  try {
    for (const scenario of selectedScenarios) {
      for (let rep = 1; rep <= reps; rep++) {
        for (const client of selectedClients) {
          const t0 = Date.now()
          try {
            const result = await runChild(server, client, scenario)
            runs.push({ scenario, client, rep, result })
            const p = primary[scenario]
            console.log(
              `${scenario.padEnd(15)} ${client.padEnd(12)} rep ${rep}: ${p.key} ${fmt(result.metrics[p.key], 2)}${
                result.valid ? "" : `  INVALID ${result.detail ?? ""}`
              }  (${Date.now() - t0} ms)`
            )
          } catch (error) {
            const message = error instanceof Error ? error.message : String(error)
            runs.push({ scenario, client, rep, error: message })
            console.log(`${scenario.padEnd(15)} ${client.padEnd(12)} rep ${rep}: FAILED ${message}`)
          }
        }
      }
    }
  } finally {
    await server.close()
  }

  // medians
  const medians: Partial<Record<ScenarioName, Partial<Record<ClientName, Record<string, number>>>>> = {}
  const invalid: Array<string> = []
  for (const scenario of selectedScenarios) {
    const byClient: Partial<Record<ClientName, Record<string, number>>> = {}
    for (const client of selectedClients) {
      const ok = runs.filter((r) => r.scenario === scenario && r.client === client && r.result !== undefined)
      for (const r of ok) {
        if (!r.result!.valid) invalid.push(`${scenario}/${client} rep ${r.rep}: ${r.result!.detail ?? "invalid"}`)
      }
      if (ok.length === 0) continue
      const keys = Object.keys(ok[0]!.result!.metrics)
      byClient[client] = Object.fromEntries(keys.map((k) => [k, median(ok.map((r) => r.result!.metrics[k]!))]))
    }
    medians[scenario] = byClient
  }
  const ratio = (scenario: ScenarioName, edition: EditionName, against: ClientName): number | undefined => {
    const key = primary[scenario].key
    const ours = medians[scenario]?.[edition]?.[key]
    const other = medians[scenario]?.[against]?.[key]
    return ours === undefined || other === undefined ? undefined : ours / other
  }

  // the tables
  const machine = {
    cpu: Os.cpus()[0]?.model ?? "unknown",
    cores: Os.cpus().length,
    node: process.version,
    platform: `${Os.type()} ${Os.release()} ${Os.arch()}`,
    memoryGB: Math.round(Os.totalmem() / 1024 ** 3)
  }
  const md: Array<string> = []
  md.push(
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGB} GB, Node ${machine.node} (${machine.platform}).`,
    `Medians of ${reps} repetitions, each client in its own process against a local flood server; ` +
      `our editions ${compiled ? "compiled by tsc" : "through tsx"}, over their own Node WebSocket; ` +
      `realtime-js ${realtimeJsVersion()} over \`ws\`; the floor is \`ws\` + \`JSON.parse\` + a switch. ` +
      (floodWarmup() > 0
        ? `Floods are measured after a warm-up of ${
          floodWarmup().toLocaleString("en")
        } frames (same topics), subscribe after ${subscribeWarmup().length} other joins (kept), `
        : "Floods and subscribe are measured cold (no warm-up), ") +
      `rtt after ${sizes.rttWarmup} round trips, memory after ${sizes.memoryWarmup} channels.`,
    ""
  )
  for (const scenario of selectedScenarios) {
    const cols = columns[scenario]
    const p = primary[scenario]
    md.push(
      `**${scenario}**: ${descriptions[scenario]} (ratio of ${cols.find((c) => c.key === p.key)!.label}, ${
        p.higherIsBetter ? "higher" : "lower"
      } is better)`,
      "",
      `| client | ${cols.map((c) => c.label).join(" | ")} | ${
        selectedEditions.map((e) => `${e} ÷ this`).join(" | ")
      } |`,
      `|---|${cols.map(() => "---:").join("|")}|${selectedEditions.map(() => "---:").join("|")}|`
    )
    for (const client of selectedClients) {
      const m = medians[scenario]?.[client]
      const ratios = selectedEditions.map((e) => e === client ? "" : fmt(ratio(scenario, e, client), 2))
      md.push(`| ${client} | ${cols.map((c) => fmt(m?.[c.key], c.digits)).join(" | ")} | ${ratios.join(" | ")} |`)
    }
    md.push("")
  }
  const verdicts = targets.filter((t) =>
    selectedScenarios.includes(t.scenario) && selectedClients.includes(t.edition) && selectedClients.includes(t.against)
  ).map((t) => {
    const r = ratio(t.scenario, t.edition, t.against)
    const pass = r !== undefined && (t.min === undefined || r >= t.min) && (t.max === undefined || r <= t.max)
    return { ...t, ratio: r, pass }
  })
  md.push("| target | edition ÷ other | result |", "|---|---:|---|")
  for (const v of verdicts) md.push(`| ${v.name} | ${fmt(v.ratio, 2)} | ${v.pass ? "PASS" : "FAIL"} |`)
  if (invalid.length > 0) md.push("", `Invalid runs: ${invalid.join("; ")}`)
  const failed = runs.filter((r) => r.error !== undefined)
  if (failed.length > 0) {
    md.push(
      "",
      `Failed runs: ${failed.map((r) => `${r.scenario}/${r.client} rep ${r.rep}`).join(", ")}`
    )
  }
  const markdown = md.join("\n") + "\n"
  console.log("\n" + markdown)
  console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s`)

  const json = {
    date: new Date().toISOString(),
    machine,
    reps,
    sizes: { ...sizes, floodWarmup: floodWarmup() },
    medians,
    targets: verdicts.map((v) => ({ name: v.name, ratio: v.ratio, pass: v.pass })),
    invalid,
    runs
  }
  const dir = Path.join(here, "results")
  Fs.mkdirSync(dir, { recursive: true })
  if (fullRun) {
    Fs.writeFileSync(Path.join(dir, "latest.json"), JSON.stringify(json, null, 2) + "\n")
    Fs.writeFileSync(Path.join(dir, "latest.md"), markdown)
    console.log("wrote bench/results/latest.json and latest.md")
  } else {
    Fs.writeFileSync(Path.join(dir, "partial.local.json"), JSON.stringify(json, null, 2) + "\n")
    console.log("partial run: wrote bench/results/partial.local.json")
  }
}

function realtimeJsVersion(): string {
  try {
    const pkg = Path.join(here, "..", "node_modules", "@supabase", "realtime-js", "package.json")
    return (JSON.parse(Fs.readFileSync(pkg, "utf8")) as { version: string }).version
  } catch {
    return "?"
  }
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
