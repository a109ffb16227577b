/**
 * The core's codecs as this edition's: a core `Result` with a plain `ProtocolIssue` becomes an
 * `Either` with a `ProtocolError`, once, here.
 */
import * as Either from "effect/Either"
import type * as Model from "../../core/protocol/model.js"
import type * as CoreResult from "../../core/result.js"
import type * as Protocol from "../../Protocol.js"
import { ProtocolError } from "../../RealtimeError.js"

/** A codec result of the core as an `Either`, its `ProtocolIssue` as a `ProtocolError`. */
export const fromResult = <A>(result: CoreResult.Result<A, Model.ProtocolIssue>): Either.Either<A, ProtocolError> =>
  result.ok
    ? Either.right(result.value)
    : Either.left(new ProtocolError({ reason: result.error.reason, detail: result.error.detail }, true))

/** A codec function of the core with its result as an `Either` (see {@link fromResult}). */
export const lift = <Args, A>(
  codec: (args: Args) => CoreResult.Result<A, Model.ProtocolIssue>
): (args: Args) => Either.Either<A, ProtocolError> =>
(args) => fromResult(codec(args))

/** A serializer of the core (client or server side) as this edition's. */
export const fromCore = (core: Model.Serializer): Protocol.Serializer => ({
  vsn: core.vsn,
  encode: lift((message) => core.encode(message)),
  decode: lift((frame) => core.decode(frame))
})
