/**
 * One bench run in its own process: `child.ts <client> <scenario> <url>`, started by `run.ts`
 * (over IPC: it reports `ready` when the parent should flood, then its result).
 */
import { type ClientName, clients, type RunResult, type ScenarioName, scenarios, send } from "./shared.js"

const [client, scenario, url] = process.argv.slice(2) as [ClientName, ScenarioName, string]

type Run = (scenario: ScenarioName, url: string) => Promise<RunResult>

const load = async (name: ClientName): Promise<Run> => {
  switch (name) {
    case "ours":
      return (await import("./clients/ours.js")).run
    case "ours-effect4": {
      // under effect4/, where `effect` resolves to Effect 4 (a computed specifier: the root
      // type-check, which resolves `effect` to Effect 3, must not follow it)
      const edition: string = "../effect4/bench/ours.js"
      return ((await import(edition)) as { readonly run: Run }).run
    }
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
