/**
 * Decoding a channel's events with the subscriber's schema: decoders that never throw, and the typed
 * stream that skips (or fails on) payloads that do not match.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Describe from "../../core/describe.js"
import type * as RealtimeChannel from "../../RealtimeChannel.js"
import type { PayloadDecodeError } from "../../RealtimeError.js"

/**
 * A schema's decoder that never throws: a recursive schema overflows the stack on a payload nested
 * deep enough, and that is a payload that does not match, not a defect. The failure is the parse
 * issue, or the text of what was thrown.
 */
export const safeDecoder = <A>(schema: Schema.Schema<A, any>) => {
  const decode = Schema.decodeUnknownEither(schema)
  return (u: unknown): Either.Either<A, ParseResult.ParseIssue | string> => {
    try {
      const result = decode(u)
      return result._tag === "Right" ? result as Either.Either<A, never> : Either.left(result.left.issue)
    } catch (cause) {
      return Either.left(
        `the schema could not decode the payload (${
          cause instanceof Error ? Describe.truncate(cause.message, 200) : "a throw"
        })`
      )
    }
  }
}

/** An item a typed stream does not emit: a payload that does not match (`error`), or a malformed one. */
export class Skipped {
  constructor(readonly log: Effect.Effect<void>, readonly error?: PayloadDecodeError) {}
}

/**
 * `decode` applied to every item, as one synchronous `mapChunks` (no Effect per element). A `Skipped`
 * item is left out and logged from a fiber of its own (`runFork`); with `onDecodeError: "fail"`, a
 * payload that does not match ends the stream with its `PayloadDecodeError` once what came before it
 * is emitted.
 *
 * An Effect per chunk that holds the chunk would make Effect 3's stream runner keep every chunk since
 * the last young-generation GC alive and promote it (bench/gc-survivors.ts).
 */
export const decodeStream = <A, B>(
  stream: Stream.Stream<A>,
  options: RealtimeChannel.DecodeOptions | undefined,
  decode: (item: A) => B | Skipped,
  runFork: (effect: Effect.Effect<void>) => Fiber.RuntimeFiber<void>
): Stream.Stream<B, PayloadDecodeError> => {
  const fail = options?.onDecodeError === "fail"
  const decoded = Stream.mapChunks(stream, (chunk) => {
    const out: Array<any> = []
    let logs: Array<Effect.Effect<void>> | undefined
    for (const item of chunk) {
      const result = decode(item)
      if (!(result instanceof Skipped)) {
        out.push(fail ? Exit.succeed(result) : result)
      } else if (fail && result.error !== undefined) {
        out.push(Exit.fail(Option.some(result.error)))
        break
      } else {
        ;(logs ??= []).push(result.log)
      }
    }
    if (logs !== undefined) runFork(Effect.all(logs, { discard: true }))
    return Chunk.unsafeFromArray(out)
  })
  return fail
    ? Stream.flattenExitOption(decoded as Stream.Stream<Exit.Exit<B, Option.Option<PayloadDecodeError>>>)
    : decoded as Stream.Stream<B>
}
