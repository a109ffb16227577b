/**
 * Summarises a `.heapprofile` (from `BENCH_PROFILE_HEAP=1 npm run bench -- --profile ...`): bytes
 * allocated in the measured window by allocating function. `tsx bench/heap-profile.ts <file> [top]`.
 */
import * as Fs from "node:fs"

interface HeapNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly selfSize: number
  readonly children: ReadonlyArray<HeapNode>
}

const [file, topArg] = process.argv.slice(2)
if (file === undefined) throw new Error("usage: heap-profile.ts <file.heapprofile> [top]")
const root = (JSON.parse(Fs.readFileSync(file, "utf8")) as { head: HeapNode }).head
const bySite = new Map<string, number>()
let total = 0
const walk = (node: HeapNode) => {
  const f = node.callFrame
  const url = f.url.replace(/^.*node_modules\//, "").replace(/^.*supabase-realtime-effect-bench\//, "")
  const name = `${f.functionName || "(anonymous)"} ${url}:${f.lineNumber + 1}`
  bySite.set(name, (bySite.get(name) ?? 0) + node.selfSize)
  total += node.selfSize
  for (const child of node.children) walk(child)
}
walk(root)
console.log(`${file}: ${(total / 1024 / 1024).toFixed(1)} MB allocated (sampled)`)
for (const [name, size] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 30))) {
  console.log(
    `${(size / 1024 / 1024).toFixed(2).padStart(8)} MB ${((100 * size) / total).toFixed(1).padStart(5)}%  ${name}`
  )
}
