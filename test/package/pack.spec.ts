/**
 * Each edition as a user gets it: `npm pack` (which builds `dist/` in `prepack`), installed into a
 * scratch consumer project beside its Effect (3 for `supabase-realtime-effect`, 4 for
 * `supabase-realtime-effect4`, on the Node 22 that line needs), type-checked with `skipLibCheck: false` under NodeNext
 * and under bundler resolution, compiled with tsc, and run with plain `node` (ESM, and CommonJS
 * through `require`) against the embedded Realtime server on 127.0.0.1. No tsx, no source condition.
 *
 * The consumer's dependencies are the exact versions of the edition's lockfile, installed with
 * `--prefer-offline` (from npm's cache when `npm ci` ran, else the registry). Run by
 * `npm run test:package` (part of `npm test`), after the rest of the suite, on its own.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "../..")
const tsc = Path.join(root, "node_modules/typescript/bin/tsc")
const minutes = (n: number) => n * 60_000

interface Result {
  readonly code: number | null
  readonly output: string
}

// the environment of a child npm: none of the npm variables of a surrounding `npm test`
const childEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_(lifecycle|package|command|config_local_prefix|config_prefix$|execpath)/i.test(key)) continue
    if (key === "INIT_CWD") continue
    env[key] = value
  }
  delete env.SUPABASE_URL
  delete env.SUPABASE_ANON_KEY
  return env
}

const run = (command: string, args: ReadonlyArray<string>, cwd: string, timeout: number) =>
  new Promise<Result>((resolve) => {
    const started = Date.now()
    const child = spawn(command, args, { cwd, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] })
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
      resolve({ code, output })
    })
  })

const expectSuccess = (label: string, result: Result) =>
  expect(result.code, `${label} exited with ${result.code}:\n${result.output}`).toBe(0)

const lockedVersion = (dir: string, name: string): string => {
  const lock = JSON.parse(Fs.readFileSync(Path.join(dir, "package-lock.json"), "utf8"))
  const version = lock.packages?.[`node_modules/${name}`]?.version
  if (typeof version !== "string") throw new Error(`${name} is not in ${dir}/package-lock.json`)
  return version
}

/**
 * One edition as its users install it: the directory packed, the consumer fixture, the packages
 * installed beside it (at the versions of that edition's lockfile), and the Node that runs it.
 */
interface Edition {
  readonly name: string
  readonly dir: string
  readonly fixture: string
  readonly peers: ReadonlyArray<string>
  readonly node: string
  /** Where the entry points' `index.js` files are in the tarball. */
  readonly entries: string
}

const editions: ReadonlyArray<Edition> = [
  {
    name: "supabase-realtime-effect",
    dir: root,
    fixture: Path.join(root, "test/package/consumer"),
    peers: ["effect", "@effect/platform"],
    node: process.execPath,
    entries: "dist/"
  },
  {
    name: "supabase-realtime-effect4",
    dir: Path.join(root, "effect4"),
    fixture: Path.join(root, "test/package/consumer-effect4"),
    peers: ["effect"],
    // Effect 4's line wants Node 22: the edition's `node@22` dev dependency
    node: Path.join(root, "effect4/node_modules/node/bin/node"),
    // the edition and the core it shares with the Effect 3 edition, compiled from the repo root
    entries: "dist/effect4/src/"
  }
]

// every installed copy of a package, under any node_modules of the consumer
const copiesOf = (dir: string, name: string): Array<string> => {
  const found: Array<string> = []
  const visit = (modules: string) => {
    if (!Fs.existsSync(modules)) return
    for (const entry of Fs.readdirSync(modules)) {
      if (entry.startsWith(".")) continue
      const packages = entry.startsWith("@")
        ? Fs.readdirSync(Path.join(modules, entry)).map((scoped) => Path.join(modules, entry, scoped))
        : [Path.join(modules, entry)]
      for (const pkg of packages) {
        const manifest = Path.join(pkg, "package.json")
        if (Fs.existsSync(manifest) && JSON.parse(Fs.readFileSync(manifest, "utf8")).name === name) found.push(pkg)
        visit(Path.join(pkg, "node_modules"))
      }
    }
  }
  visit(Path.join(dir, "node_modules"))
  return found
}

describe.sequential.each(editions)("the packed $name in a consumer project", (edition) => {
  let scratch = ""
  let consumer = ""
  let files: Array<string> = []

  beforeAll(async () => {
    scratch = Fs.mkdtempSync(Path.join(Os.tmpdir(), `${edition.name}-pack-`))
    consumer = Path.join(scratch, "consumer")
    const packed = await run("npm", ["pack", "--pack-destination", scratch], edition.dir, minutes(10))
    expectSuccess("npm pack", packed)
    const tarball = Fs.readdirSync(scratch).find((name) => name.endsWith(".tgz"))
    expect(tarball, packed.output).toBeDefined()
    const listing = await run("tar", ["-tzf", Path.join(scratch, tarball!)], scratch, minutes(1))
    expectSuccess("tar -tzf", listing)
    files = listing.output.split("\n").filter((line) => line.length > 0).map((line) => line.replace(/^package\//, ""))

    Fs.mkdirSync(consumer)
    for (const name of Fs.readdirSync(edition.fixture)) {
      if (name !== "package.json") Fs.copyFileSync(Path.join(edition.fixture, name), Path.join(consumer, name))
    }
    const manifest = JSON.parse(Fs.readFileSync(Path.join(edition.fixture, "package.json"), "utf8"))
    manifest.dependencies = {
      [edition.name]: `file:../${tarball}`,
      ...Object.fromEntries(
        [...edition.peers, "@types/node"].map((name) => [name, lockedVersion(edition.dir, name)])
      )
    }
    Fs.writeFileSync(Path.join(consumer, "package.json"), JSON.stringify(manifest, null, 2))
    const installed = await run(
      "npm",
      ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
      consumer,
      minutes(10)
    )
    expectSuccess("npm install (consumer)", installed)
  }, minutes(20))

  afterAll(() => {
    if (scratch !== "") Fs.rmSync(scratch, { recursive: true, force: true })
  })

  it("the tarball holds the compiled entry points and their types", () => {
    for (const entry of ["", "node/", "browser/", "testing/"]) {
      expect(files).toContain(`${edition.entries}${entry}index.js`)
      expect(files).toContain(`${edition.entries}${entry}index.d.ts`)
    }
    expect(files).toContain("README.md")
    expect(files.filter((file) => file.startsWith("test/") || file.startsWith("bench/"))).toEqual([])
  })

  it("the consumer resolves one Effect, and npm sees no peer problem", async () => {
    for (const peer of edition.peers) {
      expect(copiesOf(consumer, peer)).toEqual([Path.join(consumer, "node_modules", peer)])
    }
    expectSuccess("npm ls", await run("npm", ["ls", "--all", "--offline"], consumer, minutes(2)))
  }, minutes(3))

  it("type-checks with skipLibCheck false under NodeNext (ESM and CommonJS), and compiles", async () => {
    expectSuccess(
      "tsc -p tsconfig.nodenext.json",
      await run(process.execPath, [tsc, "-p", "tsconfig.nodenext.json"], consumer, minutes(5))
    )
    expect(Fs.existsSync(Path.join(consumer, "dist/main.js"))).toBe(true)
    expect(Fs.existsSync(Path.join(consumer, "dist/main.cjs"))).toBe(true)
  }, minutes(6))

  it("type-checks with skipLibCheck false under bundler resolution", async () => {
    expectSuccess(
      "tsc -p tsconfig.bundler.json",
      await run(process.execPath, [tsc, "-p", "tsconfig.bundler.json"], consumer, minutes(5))
    )
  }, minutes(6))

  it("runs with plain node (ESM) against the embedded server", async () => {
    const result = await run(edition.node, ["dist/main.js"], consumer, minutes(3))
    expectSuccess("node dist/main.js", result)
    expect(result.output).toContain("received over 127.0.0.1: hello from the tarball")
    expect(result.output).toContain("consumer ok")
  }, minutes(4))

  it("runs with plain node from CommonJS (require of the ESM build)", async () => {
    const result = await run(edition.node, ["dist/main.cjs"], consumer, minutes(3))
    expectSuccess("node dist/main.cjs", result)
    expect(result.output).toContain("received over require: hello from require")
    expect(result.output).toContain("cjs consumer ok")
  }, minutes(4))
})
