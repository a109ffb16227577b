/**
 * Installs the Effect 4 edition's dependencies (its own `node_modules`, with Effect 4, vitest 5 and
 * Node 22) from its lockfile, when they are missing or older than the lockfile. Run by the root
 * package's `prepare` (so `npm install` / `npm ci` at the root set up both editions); a no-op when
 * the edition's folder is absent.
 */
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const dir = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")
const lock = Path.join(dir, "package-lock.json")
const installed = Path.join(dir, "node_modules", ".package-lock.json")

const fresh = () => {
  if (!Fs.existsSync(installed)) return false
  return Fs.readFileSync(installed, "utf8").length > 0 && Fs.statSync(installed).mtimeMs >= Fs.statSync(lock).mtimeMs
}

if (!Fs.existsSync(lock)) process.exit(0)
if (fresh()) {
  console.log("effect4: dependencies up to date")
  process.exit(0)
}
console.log("effect4: installing the Effect 4 edition's dependencies (npm ci)")
// its own install, whatever the surrounding npm was told (`--omit=dev`, NODE_ENV=production, a
// prefix): the edition's dev dependencies are its test toolchain
const env = {}
for (const [key, value] of Object.entries(process.env)) {
  if (/^npm_/i.test(key) || key === "NODE_ENV" || key === "INIT_CWD") continue
  env[key] = value
}
const result = spawnSync("npm", ["ci", "--include=dev", "--no-audit", "--no-fund"], {
  cwd: dir,
  env,
  stdio: "inherit",
  // npm is a .cmd on Windows
  shell: process.platform === "win32"
})
if (result.error) console.error(`effect4: npm ci could not run: ${result.error.message}`)
process.exit(result.status ?? 1)
