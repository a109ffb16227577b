/**
 * The core's boundary: every file under `src/core/` is plain TypeScript that both editions share. It
 * imports no `effect` / `@effect/*` module and nothing outside `src/core/` (no edition module, no
 * package); node built-ins only in the server parts (`src/core/server/`).
 */
import * as Fs from "node:fs"
import { builtinModules } from "node:module"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"
import { describe, expect, it } from "vitest"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")
const core = Path.join(root, "src", "core")
const server = Path.join(core, "server")
// the Node-only parts: the in-process server and the Node WebSocket
const nodeOnly = [server, Path.join(core, "node")]

const filesUnder = (dir: string): Array<string> =>
  Fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = Path.join(dir, entry.name)
    return entry.isDirectory() ? filesUnder(path) : /\.[cm]?[jt]sx?$/.test(entry.name) ? [path] : []
  })

/** Every module specifier of a file: imports, re-exports, `import()`, `require()`, `import("x").T` types. */
const specifiers = (file: string): Array<string> => {
  const text = Fs.readFileSync(file, "utf8")
  const out = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName)
  // `import("x")` in type positions is not always listed by preProcessFile
  for (const match of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) out.push(match[1]!)
  return [...new Set(out)]
}

const builtins = new Set(builtinModules)
const isBuiltin = (specifier: string): boolean =>
  specifier.startsWith("node:") || builtins.has(specifier) || builtins.has(specifier.split("/")[0]!)

const inside = (dir: string, path: string): boolean => {
  const relative = Path.relative(dir, path)
  return relative === "" || (!relative.startsWith("..") && !Path.isAbsolute(relative))
}

const files = filesUnder(core)

/** What is wrong with a core file importing these specifiers (nothing: an empty list). */
const problemsOf = (file: string, imported: ReadonlyArray<string>): Array<string> => {
  const problems: Array<string> = []
  const name = Path.relative(root, file)
  for (const specifier of imported) {
    if (specifier === "effect" || specifier.startsWith("effect/") || specifier.startsWith("@effect/")) {
      problems.push(`${name}: imports ${specifier} (the core is Effect-free)`)
    } else if (isBuiltin(specifier)) {
      if (!nodeOnly.some((dir) => inside(dir, file))) {
        problems.push(`${name}: imports the node built-in ${specifier} outside src/core/server and src/core/node`)
      }
    } else if (specifier.startsWith(".")) {
      const target = Path.resolve(Path.dirname(file), specifier)
      if (!inside(core, target)) problems.push(`${name}: imports ${specifier}, outside src/core`)
    } else {
      problems.push(`${name}: imports the package ${specifier} (the core imports nothing outside src/core)`)
    }
  }
  return problems
}

// The Effect 4 edition imports its own modules, the core and packages, never the Effect 3 edition
// (its build compiles from the repository root: such an import would ship Effect 3 code in it).
const edition4 = Path.join(root, "effect4", "src")
const edition4Problems = (file: string, imported: ReadonlyArray<string>): Array<string> =>
  imported.filter((specifier) => specifier.startsWith(".")).flatMap((specifier) => {
    const target = Path.resolve(Path.dirname(file), specifier)
    return inside(edition4, target) || inside(core, target)
      ? []
      : [`${Path.relative(root, file)}: imports ${specifier}, outside effect4/src and src/core`]
  })

describe("src/core boundary", () => {
  it("has files to check", () => {
    expect(files.length).toBeGreaterThan(10)
  })

  it("imports no effect, no package, nothing outside src/core, and node built-ins only in src/core/server", () => {
    expect(files.flatMap((file) => problemsOf(file, specifiers(file)))).toEqual([])
  })

  it("catches what it must catch", () => {
    const protocolFile = Path.join(core, "protocol", "text.ts")
    const serverFile = Path.join(server, "engine.ts")
    for (const bad of ["effect", "effect/Either", "@effect/platform", "ws", "../../Protocol.js", "node:http"]) {
      expect(problemsOf(protocolFile, [bad]), bad).toHaveLength(1)
    }
    expect(problemsOf(serverFile, ["node:http", "crypto", "../result.js"])).toEqual([])
    expect(problemsOf(protocolFile, ["../result.js", "./bytes.js"])).toEqual([])
    expect(edition4Problems(Path.join(edition4, "Transport.ts"), ["../../src/Transport.js"])).toHaveLength(1)
    expect(edition4Problems(Path.join(edition4, "internal", "x.ts"), ["../../../src/core/result.js", "../Protocol.js"]))
      .toEqual([])
  })

  it("the Effect 4 edition imports nothing of the Effect 3 edition", () => {
    expect(filesUnder(edition4).flatMap((file) => edition4Problems(file, specifiers(file)))).toEqual([])
  })
})
