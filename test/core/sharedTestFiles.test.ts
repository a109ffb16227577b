/**
 * The test files both suites share: what the Effect 4 edition's tests import from the root's
 * `test/` (the wire and presence helpers of the core's tests, the fuzz frames, the browser page
 * builder) is Effect-free and runner-free. It imports no `effect` / `@effect/*` module (the Effect 4 suite would load Effect 3
 * from the root's `node_modules`), no `vitest` (each suite runs its own), no edition module, and
 * nothing of `test/` but other shared files.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"
import { describe, expect, it } from "vitest"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const tests4 = Path.join(root, "effect4", "test")
const rootTests = Path.join(root, "test")
const core = Path.join(root, "src", "core")

const filesUnder = (dir: string): Array<string> =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = Path.join(dir, entry.name)
    return entry.isDirectory() ? filesUnder(path) : /\.ts$/.test(entry.name) ? [path] : []
  })

const inside = (dir: string, path: string): boolean => {
  const relative = Path.relative(dir, path)
  return relative === "" || (!relative.startsWith("..") && !Path.isAbsolute(relative))
}

/** The files a file imports by relative path, resolved (`.js` specifiers name `.ts` sources). */
const relativeImports = (file: string): Array<string> =>
  ts.preProcessFile(Fs.readFileSync(file, "utf8"), true, true).importedFiles
    .map((f) => f.fileName)
    .filter((specifier) => specifier.startsWith("."))
    .map((specifier) => Path.resolve(Path.dirname(file), specifier).replace(/\.js$/, ".ts"))

const packageImports = (file: string): Array<string> =>
  ts.preProcessFile(Fs.readFileSync(file, "utf8"), true, true).importedFiles
    .map((f) => f.fileName)
    .filter((specifier) => !specifier.startsWith("."))

/** The root's test files the Effect 4 suite imports, and what they import in turn. */
const shared = (() => {
  const found = new Set<string>()
  const visit = (file: string) => {
    if (found.has(file)) return
    found.add(file)
    for (const target of relativeImports(file)) if (inside(rootTests, target)) visit(target)
  }
  for (const file of filesUnder(tests4)) {
    for (const target of relativeImports(file)) if (inside(rootTests, target)) visit(target)
  }
  return [...found].sort()
})()

describe("test files shared by both suites", () => {
  it("the Effect 4 suite shares the fuzz frames, the wire and presence helpers and the browser page builder", () => {
    expect(shared.map((file) => Path.relative(root, file))).toEqual(
      expect.arrayContaining([
        "test/browser/build.ts",
        "test/support/fuzzFrames.ts",
        "test/support/presence.ts",
        "test/support/protocol.ts"
      ])
    )
  })

  it("they import no Effect, no test runner, no edition: only the core, other shared files and packages", () => {
    const problems = shared.flatMap((file) => {
      const name = Path.relative(root, file)
      const packages = packageImports(file)
        .filter((p) => p === "effect" || p.startsWith("effect/") || p.startsWith("@effect/") || p === "vitest")
        .map((p) => `${name}: imports ${p}`)
      const relatives = relativeImports(file)
        .filter((target) => !inside(core, target) && !shared.includes(target))
        .map((target) => `${name}: imports ${Path.relative(root, target)}`)
      return [...packages, ...relatives]
    })
    expect(problems).toEqual([])
  })
})
