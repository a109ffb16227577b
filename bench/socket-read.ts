/**
 * `npm run bench:socket`: the Node socket alone. The same server floods (binary, fan-in) read by the
 * client's own WebSocket and by `ws`, each with a listener that only counts; medians of 7
 * interleaved runs, in ms (lower is better).
 */
import WebSocket from "ws"
import { NodeWebSocket } from "../src/core/node/webSocket.js"
import { buildFlood, startServer } from "./server.js"
import { floodSpec } from "./shared.js"

const server = await startServer()
const kinds = ["inbound-binary", "fan-in"] as const
const floods = Object.fromEntries(kinds.map((k) => [k, buildFlood(floodSpec(k, "measure"))]))
const counts = { "inbound-binary": 200_000, "fan-in": 200_000 }
const run = async (make: (url: string) => any, kind: (typeof kinds)[number]) => {
  const ws = make(server.url + "/websocket?vsn=2.0.0")
  await new Promise((r) => ws.addEventListener("open", r))
  let n = 0
  let bytes = 0
  const t0 = performance.now()
  await new Promise<void>((resolve) => {
    ws.addEventListener("message", (e: { data: unknown }) => {
      bytes += typeof e.data === "string" ? e.data.length : (e.data as Uint8Array).length
      if (++n === counts[kind]) resolve()
    })
    server.flood(floods[kind]!)
  })
  const ms = performance.now() - t0
  ws.close()
  return ms
}
const results: Record<string, Array<number>> = {}
for (let rep = 0; rep < 7; rep++) {
  for (const kind of kinds) {
    for (
      const [name, make] of [["ours", (u: string) => new NodeWebSocket(u)], [
        "ws",
        (u: string) => new WebSocket(u)
      ]] as const
    ) {
      const ms = await run(make, kind)
      ;(results[`${kind} ${name}`] ??= []).push(ms)
    }
  }
}
for (const [k, v] of Object.entries(results)) console.log(k, v.sort((a, b) => a - b)[3]!.toFixed(0), "ms")
await server.close()
process.exit(0)
