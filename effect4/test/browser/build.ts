/**
 * Bundles the browser page (`page.ts` on the Effect 4 edition's `./browser` entry, imported from
 * `effect4/src` by relative path, with Effect 4 from `effect4/node_modules`) with esbuild into a
 * directory with `index.html` and `page.js`.
 *
 * `npm exec -- tsx test/browser/build.ts [outdir]` (in `effect4/`) builds it and prints the sizes.
 */
import * as esbuild from "esbuild"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import * as Zlib from "node:zlib"

const here = Path.dirname(fileURLToPath(import.meta.url))

export interface BuiltPage {
  /** Holds `index.html` and `page.js`. */
  readonly dir: string
  /** Size of `page.js` in bytes, and gzipped (level 9). */
  readonly bytes: number
  readonly gzipBytes: number
}

/** Builds into `outdir` (default: a fresh temp dir). */
export const buildPage = async (outdir?: string): Promise<BuiltPage> => {
  const dir = outdir ?? await Fs.mkdtemp(Path.join(Os.tmpdir(), "realtime-browser-page-"))
  await Fs.mkdir(dir, { recursive: true })
  const result = await esbuild.build({
    entryPoints: [Path.join(here, "page.ts")],
    outfile: Path.join(dir, "page.js"),
    platform: "browser",
    format: "esm",
    target: "es2022",
    bundle: true,
    minify: true,
    legalComments: "none",
    logLevel: "silent",
    write: false
  })
  const bundle = result.outputFiles[0]!.contents
  await Fs.writeFile(Path.join(dir, "page.js"), bundle)
  await Fs.copyFile(Path.join(here, "index.html"), Path.join(dir, "index.html"))
  return { dir, bytes: bundle.byteLength, gzipBytes: Zlib.gzipSync(bundle, { level: 9 }).byteLength }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const built = await buildPage(process.argv[2])
  console.log(
    `${Path.join(built.dir, "page.js")}: ${(built.bytes / 1024).toFixed(1)} KiB, ${
      (built.gzipBytes / 1024).toFixed(1)
    } KiB gzipped`
  )
}
