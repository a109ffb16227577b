/**
 * One bench run in its own process: `child.ts <client> <scenario> <url>`, started by `run.ts`
 * (over IPC: it reports `ready` when the parent should flood, then its result).
 */
import { type ClientName, clients, type RunResult, type ScenarioName, scenarios, send } from "./shared.js"

const [client, scenario, url] = process.argv.slice(2) as [ClientName, ScenarioName, string]

const load = async (name: ClientName): Promise<(scenario: ScenarioName, url: string) => Promise<RunResult>> => {
  switch (name) {
    case "ours":
      return (await import("./clients/ours.js")).run
    case "realtime-js":
      return (await import("./clients/realtime-js.js")).run
    case "floor":
      return (await import("./clients/floor.js")).run
  }
}

const main = async () => {
  if (!clients.includes(client) || !scenarios.includes(scenario) || url === undefined) {
    throw new Error(`usage: child.ts <${clients.join("|")}> <${scenarios.join("|")}> <url>`)
  }
  const run = await load(client)
  const result = await run(scenario, url)
  await send({ type: "result", result })
}

main().then(
  () => process.exit(0),
  async (error: unknown) => {
    await send({ type: "error", message: error instanceof Error ? error.stack ?? error.message : String(error) })
      .catch(() => {})
    process.exit(1)
  }
)
