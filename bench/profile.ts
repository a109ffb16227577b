/**
 * Summarises a `.cpuprofile` (from `npm run bench -- --profile ...`): self time by function and by
 * module, and inclusive time of the functions that matter. `tsx bench/profile.ts <file> [top]`.
 */
import * as Fs from "node:fs"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
  readonly startTime: number
  readonly endTime: number
}

const [file, topArg, callersOf] = process.argv.slice(2)
if (file === undefined) throw new Error("usage: profile.ts <file.cpuprofile> [top] [callers-of-function]")
const top = Number(topArg ?? 40)
const profile = JSON.parse(Fs.readFileSync(file, "utf8")) as Profile

const shortUrl = (url: string): string => {
  const nm = url.lastIndexOf("node_modules/")
  if (nm >= 0) return url.slice(nm + "node_modules/".length)
  const src = url.indexOf("/work/main/")
  return src >= 0 ? url.slice(src + "/work/main/".length) : url.replace(/^file:\/\//, "")
}
const moduleOf = (url: string): string => {
  if (url === "") return "(native/vm)"
  const s = shortUrl(url)
  if (s.startsWith("node:")) return s
  const parts = s.split("/")
  if (parts[0]!.startsWith("@")) return `${parts[0]}/${parts[1]}${parts[2] === "dist" ? `/${parts[4] ?? ""}` : ""}`
  if (parts[0] === "effect") return `effect/${parts[3] ?? parts[2] ?? ""}`
  return parts.slice(0, 2).join("/")
}
const nameOf = (node: ProfileNode): string => {
  const f = node.callFrame
  return `${f.functionName || "(anonymous)"} ${f.url === "" ? "" : `${shortUrl(f.url)}:${f.lineNumber + 1}`}`
}

const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

const self = new Map<number, number>()
let total = 0
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]!
  const dt = profile.timeDeltas[i] ?? 0
  self.set(id, (self.get(id) ?? 0) + dt)
  total += dt
}

const selfByName = new Map<string, number>()
const selfByModule = new Map<string, number>()
const inclusiveByName = new Map<string, number>()
for (const [id, time] of self) {
  const node = byId.get(id)!
  const name = nameOf(node)
  selfByName.set(name, (selfByName.get(name) ?? 0) + time)
  const mod = moduleOf(node.callFrame.url)
  selfByModule.set(mod, (selfByModule.get(mod) ?? 0) + time)
  // each function counted once per stack
  const seen = new Set<string>()
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const n = nameOf(byId.get(cur)!)
    if (seen.has(n)) continue
    seen.add(n)
    inclusiveByName.set(n, (inclusiveByName.get(n) ?? 0) + time)
  }
}

const print = (title: string, map: Map<string, number>, n: number) => {
  console.log(`\n${title}`)
  const rows = [...map].sort((a, b) => b[1] - a[1]).slice(0, n)
  for (const [name, time] of rows) {
    console.log(`${(time / 1000).toFixed(1).padStart(9)} ms ${((100 * time) / total).toFixed(1).padStart(5)}%  ${name}`)
  }
}

// with a third argument: whose calls the matching functions' self time comes from (2 levels up)
if (callersOf !== undefined) {
  const callers = new Map<string, number>()
  for (const [id, time] of self) {
    if (!nameOf(byId.get(id)!).startsWith(callersOf)) continue
    const p1 = parent.get(id)
    const p2 = p1 === undefined ? undefined : parent.get(p1)
    const key = [p1, p2].map((p) => p === undefined ? "-" : nameOf(byId.get(p)!)).join("  <-  ")
    callers.set(key, (callers.get(key) ?? 0) + time)
  }
  print(`callers of ${callersOf}`, callers, top)
}

console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled`)
print("self time by module", selfByModule, 25)
print("self time by function", selfByName, top)
print("inclusive time by function", inclusiveByName, top)
