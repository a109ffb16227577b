/**
 * The core's codecs as this edition's: a core result with a plain `ProtocolIssue` becomes an Effect
 * `Result` with a `ProtocolError`, once, here.
 */
import * as Result from "effect/Result"
import type * as Model from "../../../../src/core/protocol/model.js"
import type * as CoreResult from "../../../../src/core/result.js"
import type * as Protocol from "../../Protocol.js"
import { ProtocolError } from "../../RealtimeError.js"

/** A codec result of the core as a `Result`, its `ProtocolIssue` as a `ProtocolError`. */
export const fromResult = <A>(result: CoreResult.Result<A, Model.ProtocolIssue>): Result.Result<A, ProtocolError> =>
  result.ok
    ? Result.succeed(result.value)
    : Result.fail(new ProtocolError({ reason: result.error.reason, detail: result.error.detail }))

/** A codec function of the core with its result as a `Result` (see {@link fromResult}). */
export const lift = <Args, A>(
  codec: (args: Args) => CoreResult.Result<A, Model.ProtocolIssue>
): (args: Args) => Result.Result<A, ProtocolError> =>
(args) => fromResult(codec(args))

/** A serializer of the core (client or server side) as this edition's. */
export const fromCore = (core: Model.Serializer): Protocol.Serializer => ({
  vsn: core.vsn,
  encode: lift((message) => core.encode(message)),
  decode: lift((frame) => core.decode(frame))
})
