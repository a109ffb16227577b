/**
 * The small checks every module needs, written once.
 */

/** An object that is not an array (a JSON object, as far as its shape goes). */
export const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/** A JSON object payload: a record that is not binary (`ArrayBuffer` or a typed array). */
export const isJsonObject = (u: unknown): u is Record<string, unknown> =>
  isRecord(u) && !ArrayBuffer.isView(u) && !(u instanceof ArrayBuffer)
