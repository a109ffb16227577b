/**
 * Bundles the Effect 4 edition's browser page (`page.ts`, on the edition's `./browser` entry
 * imported from `effect4/src` by relative path, with Effect 4 from `effect4/node_modules`) with the
 * repository's page builder (`test/browser/build.ts`, shared with the Effect 3 edition, which also
 * holds the `index.html`).
 *
 * `npm exec -- tsx test/browser/build.ts [outdir]` (in `effect4/`) builds it and prints the sizes.
 */
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Shared from "../../../test/browser/build.js"

/** Where a page was built and how big it is. */
export type BuiltPage = Shared.BuiltPage

/** Builds this edition's page into `outdir` (default: a fresh temp dir). */
export const buildPage = (outdir?: string): Promise<BuiltPage> =>
  Shared.buildPage(outdir, Path.join(Path.dirname(fileURLToPath(import.meta.url)), "page.ts"))

if (Shared.isMain(import.meta.url)) console.log(Shared.describeBuilt(await buildPage(process.argv[2])))
