/**
 * Runs every example (and the demo) of the Effect 4 edition as a user would, against the embedded
 * server: each must exit 0 on its own and print what it is about.
 *
 * Each runs on the edition's Node 22 (`node_modules/node/bin/node`, whatever Node runs vitest) with
 * the tsx loader of `effect4/node_modules`, from the `effect4/` directory. One process at a time
 * (each is a `tsx` start-up plus a few seconds of work; started all at once on a busy 2-core
 * machine they starved each other past any timeout), each with minutes to spare, and its whole
 * output in the failure message.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { describe, expect, it } from "vitest"

const timeout = 180_000

/** `effect4/`: the examples' imports and the loader resolve from there. */
const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")
const node = Path.join(root, "node_modules", "node", "bin", "node")
const tsx = pathToFileURL(Path.join(root, "node_modules", "tsx", "dist", "loader.mjs")).href

const run = (file: string) =>
  new Promise<{ code: number | null; output: string }>((resolve) => {
    const env = { ...process.env }
    delete env.SUPABASE_URL
    delete env.SUPABASE_ANON_KEY
    const started = Date.now()
    const child = spawn(node, ["--import", tsx, file], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    child.stdout.on("data", (chunk) => (output += chunk))
    child.stderr.on("data", (chunk) => (output += chunk))
    const timer = setTimeout(() => {
      output += `\n[killed after ${Math.round((Date.now() - started) / 1000)} s]`
      child.kill("SIGKILL")
    }, timeout)
    child.on("error", (error) => {
      clearTimeout(timer)
      resolve({ code: -1, output: `${output}\n${error.message}` })
    })
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code, output: `${output}\n[exit ${code} after ${Math.round((Date.now() - started) / 1000)} s]` })
    })
  })

const cases: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
  ["examples/chat.ts", ["ada received from bob: hi ada!", "bob received from ada: hello bob"]],
  ["examples/cursors.ts", ["ada is at (260, 240)", "refused: InvalidArgument"]],
  ["examples/presence.ts", [
    "update: ada",
    "leave: bob",
    "finally:",
    "refused: InvalidArgument",
    "occupancy: keys=1 connections=1"
  ]],
  ["examples/postgres-changes.ts", [
    "INSERT write the docs",
    "INSERT an int8 past 2^53, kept exact",
    "typed by Database: todos #42 (number) costs 19.9 (number)"
  ]],
  ["examples/http-broadcast.ts", ["listener got 'blob': bytes", "sent 4 messages over HTTP"]],
  ["examples/token-refresh.ts", ["rejoined after expiry; tokens issued: 2"]],
  ["examples/supabase-auth.ts", [
    "joined private channel as ada with session token #1",
    "refreshed token pushed to the channel: the server now holds session token #2",
    "signed out: the client's token is cleared"
  ]],
  ["examples/catch-up.ts", [
    "order {\"id\":2} (replayed)",
    "2 missed orders replayed, nothing missing",
    "order {\"id\":4}"
  ]],
  ["examples/network.ts", [
    "socket: Offline (the device reports no network)",
    "offline: 1 connection opened so far",
    "back online: subscribed again after"
  ]],
  ["examples/testing.ts", ["all checks passed"]],
  ["examples/demo.ts", [
    "present: ada (delighted), bob (curious)",
    "delivered: 6 chat messages",
    "todos #2 (owner bob) reached no one: every binding filters owner=eq.ada",
    "socket connection lost (1006): reconnecting, attempt 1",
    "recovered: after the dropped socket every client reconnected and rejoined"
  ]]
]

// one at a time: vitest 5 has no `describe.sequential`; `concurrent: false` says the same
describe("examples", { concurrent: false }, () => {
  it("every example in examples/ is run here", () => {
    const files = Fs.readdirSync(Path.join(root, "examples"))
      .filter((name) => name.endsWith(".ts") && name !== "support.ts")
      .map((name) => `examples/${name}`)
    expect(cases.map(([file]) => file).sort()).toEqual(files.sort())
  })

  it("the examples run on Node 22", () => {
    expect(Fs.existsSync(node), `${node} is missing (the node@22 dev dependency)`).toBe(true)
  })

  for (const [file, expected] of cases) {
    it(`${file} runs and exits 0`, async () => {
      const { code, output } = await run(file)
      expect(code, output).toBe(0)
      for (const line of expected) expect(output, output).toContain(line)
    }, timeout + 30_000)
  }
})
