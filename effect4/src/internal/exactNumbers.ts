/**
 * The client serializer made to keep `int8` / `numeric` values of Postgres changes exact (the core's
 * `exactPayload`, on the edition's `Result`-returning serializer).
 *
 * @internal
 */
import * as Result from "effect/Result"
import * as Convert from "../../../src/core/postgres/convert.js"
import type * as Protocol from "../Protocol.js"

/**
 * Keeps `int8` / `numeric` values of Postgres changes exact: a `postgres_changes` text frame that
 * holds a long run of digits is read again with `parseJsonPreservingPrecision`; every other frame
 * costs one comparison.
 *
 * @internal
 */
export const withExactPostgresNumbers = (serializer: Protocol.Serializer): Protocol.Serializer => ({
  vsn: serializer.vsn,
  encode: serializer.encode,
  decode: (frame) => {
    const decoded = serializer.decode(frame)
    if (Result.isFailure(decoded)) return decoded
    const payload = Convert.exactPayload(frame, decoded.success)
    return payload === undefined ? decoded : Result.succeed({ ...decoded.success, payload })
  }
})
