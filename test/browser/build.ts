/**
 * Bundles a browser page with esbuild into a directory with `index.html` (this folder's, the same
 * for both editions) and `page.js`. The default page is the Effect 3 edition's `page.ts` here, on
 * the `./browser` entry resolved to `src` through the `source` condition; the Effect 4 edition's
 * `effect4/test/browser/build.ts` passes its own page (which imports `effect4/src` by relative path,
 * with Effect 4 from `effect4/node_modules`). Effect-free: esbuild and node only.
 *
 * `npx tsx test/browser/build.ts [outdir]` builds the Effect 3 page and prints the sizes.
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

/** Builds `page` (default: this folder's `page.ts`) into `outdir` (default: a fresh temp dir). */
export const buildPage = async (outdir?: string, page: string = Path.join(here, "page.ts")): Promise<BuiltPage> => {
  const dir = outdir ?? await Fs.mkdtemp(Path.join(Os.tmpdir(), "realtime-browser-page-"))
  await Fs.mkdir(dir, { recursive: true })
  const result = await esbuild.build({
    entryPoints: [page],
    outfile: Path.join(dir, "page.js"),
    platform: "browser",
    format: "esm",
    target: "es2022",
    bundle: true,
    minify: true,
    conditions: ["source"],
    legalComments: "none",
    logLevel: "silent",
    write: false
  })
  const bundle = result.outputFiles[0]!.contents
  await Fs.writeFile(Path.join(dir, "page.js"), bundle)
  await Fs.copyFile(Path.join(here, "index.html"), Path.join(dir, "index.html"))
  return { dir, bytes: bundle.byteLength, gzipBytes: Zlib.gzipSync(bundle, { level: 9 }).byteLength }
}

/** Whether `moduleUrl` (an `import.meta.url`) is the script node was started with. */
export const isMain = (moduleUrl: string): boolean =>
  process.argv[1] !== undefined && moduleUrl === pathToFileURL(process.argv[1]).href

/** Where a build went and how big it is, as the command line prints it. */
export const describeBuilt = (built: BuiltPage): string =>
  `${Path.join(built.dir, "page.js")}: ${(built.bytes / 1024).toFixed(1)} KiB, ${
    (built.gzipBytes / 1024).toFixed(1)
  } KiB gzipped`

if (isMain(import.meta.url)) console.log(describeBuilt(await buildPage(process.argv[2])))
