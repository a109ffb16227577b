/**
 * How the test server reads payloads: what counts as a map, the size it compares to its limit,
 * the equality it uses to skip a repeated track, and the `{status, response}` of its replies.
 */

/** A map, as the server reads payloads: an object that is neither an array nor bytes. */
export const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u) && !(u instanceof Uint8Array)

/** The payload of an `ok` reply. */
export const ok = (response: unknown = {}) => ({ status: "ok", response })

/** The payload of an `error` reply. */
export const fail = (response: unknown = {}) => ({ status: "error", response })

const textEncoder = new TextEncoder()

/** The size the server compares to its payload limit: UTF-8 bytes of the JSON, or the raw bytes. */
export const payloadSize = (value: unknown): number => {
  if (value instanceof Uint8Array) return value.byteLength
  if (isRecord(value)) {
    let bytes = 0
    let json = false
    for (const key of Object.keys(value)) {
      const v = value[key]
      if (v instanceof Uint8Array) bytes += v.byteLength + key.length
      else json = true
    }
    if (!json) return bytes
    try {
      const text = JSON.stringify(value, (_, v) => v instanceof Uint8Array ? "" : v)
      return bytes + textEncoder.encode(text).byteLength
    } catch {
      return bytes
    }
  }
  try {
    return textEncoder.encode(JSON.stringify(value) ?? "").byteLength
  } catch {
    return 0
  }
}

/** Structural equality of JSON-like values (own keys, arrays by index). */
export const deepEqual = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false
    if (!deepEqual((a as any)[k], (b as any)[k])) return false
  }
  return true
}
