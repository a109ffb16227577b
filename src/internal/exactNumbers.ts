import * as Either from "effect/Either"
import { parseJsonPreservingPrecision } from "../PostgresChanges.js"
import type * as Protocol from "../Protocol.js"

// 16 digits in a row: the shortest run that may not survive a double (2^53 has 16 digits)
const longDigits = /\d{16}/

/**
 * Keeps `int8` / `numeric` values of Postgres changes exact: Realtime sends them as JSON numbers,
 * which `JSON.parse` rounds past 2^53 before any column conversion could see them. A
 * `postgres_changes` text frame that holds a long run of digits is read again with
 * `parseJsonPreservingPrecision` (inexact numbers become their decimal text); every other frame
 * costs one comparison.
 *
 * @internal
 */
export const withExactPostgresNumbers = (serializer: Protocol.Serializer): Protocol.Serializer => ({
  vsn: serializer.vsn,
  encode: serializer.encode,
  decode: (frame) => {
    const decoded = serializer.decode(frame)
    if (
      decoded._tag === "Left" || decoded.right.event !== "postgres_changes" || typeof frame !== "string" ||
      !longDigits.test(frame)
    ) return decoded
    let exact: unknown
    try {
      exact = parseJsonPreservingPrecision(frame)
    } catch {
      return decoded
    }
    const payload = Array.isArray(exact)
      ? exact[4]
      : typeof exact === "object" && exact !== null
      ? (exact as { readonly payload?: unknown }).payload
      : undefined
    return payload === undefined ? decoded : Either.right({ ...decoded.right, payload })
  }
})
