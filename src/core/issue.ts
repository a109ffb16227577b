/**
 * The frame of a schema issue's description, shared by both editions' `internal/describe.ts`: the
 * path of a failure, the bounds of the walk and the text the lines make. Each edition walks its own
 * `Schema` issue tree (Effect 3's `ParseIssue`, Effect 4's `SchemaIssue.Issue`) and says what a
 * leaf means; the rest is here.
 */
import * as Describe from "./describe.js"

/** Where a failure is: the last key of its path, linked to the keys before it. */
export interface PathNode {
  readonly key: PropertyKey
  readonly parent: PathNode | undefined
}

/** How many failures a description lists. */
export const MAX_LEAVES = 5

/** How many nodes of the issue tree a description visits at most. */
export const MAX_NODES = 100_000

/** The description when there is nothing better to say. */
export const NO_MATCH = "does not match the schema"

const MAX_PATH_SHOWN = 8

/** A path as `["a"][0]`, its keys bounded; a path deeper than 8 keys shows its last 8. */
export const renderPath = (path: PathNode | undefined): string => {
  const keys: Array<PropertyKey> = []
  let length = 0
  for (let node = path; node !== undefined; node = node.parent) {
    if (keys.length < MAX_PATH_SHOWN) keys.push(node.key)
    length++
  }
  keys.reverse()
  const shown = keys.map((key) =>
    `[${typeof key === "string" ? JSON.stringify(Describe.truncate(key, 40)) : String(key)}]`
  )
    .join("")
  return length > MAX_PATH_SHOWN ? `[…${length - MAX_PATH_SHOWN} levels]${shown}` : shown
}

/** The line of one failure: `text`, after its path when it has one. */
export const line = (path: PathNode | undefined, text: string): string =>
  path === undefined ? text : `${renderPath(path)}: ${text}`

/** The description the lines make (`cut`: some failures were not listed), bounded by `maxLength`. */
export const text = (lines: ReadonlyArray<string>, cut: boolean, maxLength: number): string => {
  const joined = lines.join("; ") + (cut ? "; …" : "")
  return Describe.truncate(joined === "" ? NO_MATCH : joined, maxLength)
}
