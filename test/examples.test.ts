/**
 * Runs every example (and the demo) as a user would, against the embedded server: each must exit 0
 * on its own and print what it is about.
 */
import { execFile } from "node:child_process"
import { describe, expect, it } from "vitest"

const run = (file: string) =>
  new Promise<{ code: number | null; output: string }>((resolve) => {
    const env = { ...process.env }
    delete env.SUPABASE_URL
    delete env.SUPABASE_ANON_KEY
    execFile(
      process.execPath,
      ["--conditions=source", "--import", "tsx", file],
      { env, timeout: 60_000, maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, output: stdout + stderr })
    )
  })

const cases: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
  ["examples/chat.ts", ["ada received from bob: hi ada!", "bob received from ada: hello bob"]],
  ["examples/cursors.ts", ["ada is at (260, 240)", "refused: InvalidArgument"]],
  ["examples/presence.ts", ["update: ada", "leave: bob", "finally:"]],
  ["examples/postgres-changes.ts", ["INSERT write the docs", "INSERT an int8 past 2^53, kept exact"]],
  ["examples/http-broadcast.ts", ["listener got 'blob': bytes", "sent 4 messages over HTTP"]],
  ["examples/token-refresh.ts", ["rejoined after expiry; tokens issued: 2"]],
  ["examples/testing.ts", ["all checks passed"]],
  ["examples/demo.ts", ["present: ada (delighted), bob (curious)", "delivered: 6 chat messages"]]
]

describe.concurrent("examples", () => {
  for (const [file, expected] of cases) {
    it(`${file} runs and exits 0`, async () => {
      const { code, output } = await run(file)
      expect(code, output).toBe(0)
      for (const line of expected) expect(output).toContain(line)
    }, 90_000)
  }
})
