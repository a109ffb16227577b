/**
 * Depth-safe, size-bounded text of values that came from the wire, for logs and error messages.
 * Nothing here recurses: values are walked with an explicit stack, at most `maxDepth` levels of a
 * value are shown, and the text is cut at `maxLength` characters, however deep, wide or long the
 * input is. Nothing here throws.
 */

/** The default bound of a description, in characters. */
export const MAX_LENGTH = 1_000

/** The default number of levels of a value shown. */
export const MAX_DEPTH = 16

const ELLIPSIS = "…"

/** `s`, cut to `maxLength` characters (with `…` when cut). */
export const truncate = (s: string, maxLength: number = MAX_LENGTH): string =>
  s.length <= maxLength ? s : s.slice(0, Math.max(0, maxLength - 1)) + ELLIPSIS

const quote = (s: string, maxLength: number): string => JSON.stringify(truncate(s, maxLength))

const scalar = (u: unknown, maxLength: number): string | undefined => {
  switch (typeof u) {
    case "string":
      return quote(u, maxLength)
    case "number":
    case "boolean":
    case "undefined":
    case "symbol":
      return String(u)
    case "bigint":
      return `${u}n`
    case "function":
      return "[function]"
  }
  if (u === null) return "null"
  if (u instanceof Uint8Array) return `<${u.length} bytes>`
  if (u instanceof ArrayBuffer) return `<${u.byteLength} bytes>`
  if (u instanceof Date) return Number.isNaN(u.getTime()) ? "Invalid Date" : u.toISOString()
  if (u instanceof Error) return quote(`${u.name}: ${u.message}`, maxLength)
  return undefined
}

/**
 * A JSON-like text of `u` for a log line or an error message: at most `maxDepth` levels (deeper
 * containers show as `[…]` / `{…}`) and `maxLength` characters. A top-level string is quoted too.
 */
export const describe = (
  u: unknown,
  options?: { readonly maxLength?: number | undefined; readonly maxDepth?: number | undefined }
): string => {
  const maxLength = Math.max(8, options?.maxLength ?? MAX_LENGTH)
  const maxDepth = options?.maxDepth ?? MAX_DEPTH
  try {
    let out = ""
    // each entry: text to write, or a value to render at a depth
    const stack: Array<string | { readonly value: unknown; readonly depth: number }> = [{ value: u, depth: 0 }]
    while (stack.length > 0) {
      if (out.length >= maxLength) break
      const item = stack.pop()!
      if (typeof item === "string") {
        out += item
        continue
      }
      const { depth, value } = item
      const text = scalar(value, maxLength)
      if (text !== undefined) {
        out += text
        continue
      }
      const isArray = Array.isArray(value)
      if (depth >= maxDepth) {
        out += isArray ? "[…]" : "{…}"
        continue
      }
      // at most as many entries as could be shown (each takes two characters at least)
      const room = Math.ceil((maxLength - out.length) / 2) + 1
      const parts: Array<string | { readonly value: unknown; readonly depth: number }> = []
      let more = false
      if (isArray) {
        const array = value as ReadonlyArray<unknown>
        const n = Math.min(array.length, room)
        for (let i = 0; i < n; i++) {
          if (i > 0) parts.push(",")
          parts.push({ value: array[i], depth: depth + 1 })
        }
        more = array.length > n
      } else {
        let n = 0
        for (const key in value as object) {
          // as JSON: fields set to `undefined` are left out
          if (!Object.prototype.hasOwnProperty.call(value, key)) continue
          const field = (value as Record<string, unknown>)[key]
          if (field === undefined) continue
          if (n >= room) {
            more = true
            break
          }
          if (n > 0) parts.push(",")
          parts.push(quote(key, maxLength) + ":", { value: field, depth: depth + 1 })
          n++
        }
      }
      if (more) parts.push(",…")
      stack.push(isArray ? "]" : "}")
      for (let i = parts.length - 1; i >= 0; i--) stack.push(parts[i]!)
      out += isArray ? "[" : "{"
    }
    return stack.length === 0 && out.length <= maxLength ? out : out.slice(0, maxLength - 1) + ELLIPSIS
  } catch {
    return "<unprintable>"
  }
}
