/**
 * Decoding a channel's events with the subscriber's schema: decoders that never throw, the schema of
 * an `old` row, and the typed stream that skips (or fails on) payloads that do not match.
 *
 * @internal
 */
import type * as Arr from "effect/Array"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type * as Pull from "effect/Pull"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as SchemaIssue from "effect/SchemaIssue"
import * as Stream from "effect/Stream"
import * as Struct from "effect/Struct"
import * as Describe from "../../../../src/core/describe.js"
import type * as RealtimeChannel from "../../RealtimeChannel.js"
import type { PayloadDecodeError } from "../../RealtimeError.js"

/**
 * A schema's decoder that never throws: a recursive schema overflows the stack on a payload nested
 * deep enough, and that is a payload that does not match, not a defect. The failure is the schema's
 * issue, or the text of what was thrown.
 */
export const safeDecoder = <A>(schema: Schema.Codec<A, any>) => {
  // `reportInput`: the issue carries the value that did not match, so the error and the log say
  // what came (`Expected number, actual "x"`), as the Effect 3 edition's do; only failures pay
  const decode = Schema.decodeUnknownResult(schema, { reportInput: true })
  return (u: unknown): Result.Result<A, SchemaIssue.Issue | string> => {
    try {
      const result = decode(u)
      return Result.isSuccess(result) ? result as Result.Result<A, never> : Result.fail(result.failure.issue)
    } catch (cause) {
      return Result.fail(
        `the schema could not decode the payload (${
          cause instanceof Error ? Describe.truncate(cause.message, 200) : "a throw"
        })`
      )
    }
  }
}

/**
 * The schema of an `old` row: every field of a struct schema optional (a `DELETE` or `UPDATE` carries
 * only the replica identity's columns unless the table is `REPLICA IDENTITY FULL`). A schema without
 * fields is used as it is.
 */
export const partialOf = (schema: Schema.Codec<any, any>): Schema.Codec<any, any> => {
  const struct = schema as unknown as { readonly fields?: Schema.Struct.Fields }
  if (struct.fields === undefined || typeof struct.fields !== "object") return schema
  return Schema.Struct(struct.fields).mapFields(Struct.map(Schema.optionalKey)) as unknown as Schema.Codec<any, any>
}

/** An item a typed stream does not emit: a payload that does not match (`error`), or a malformed one. */
export class Skipped {
  constructor(readonly log: Effect.Effect<void>, readonly error?: PayloadDecodeError) {}
}

/**
 * `decode` applied to every item, chunk by chunk, synchronously (no Effect per element). A `Skipped`
 * item is left out and logged from a fiber of its own (`runFork`); with `onDecodeError: "fail"`, a
 * payload that does not match ends the stream with its `PayloadDecodeError` once what came before it
 * is emitted.
 */
export const decodeStream = <A, B>(
  stream: Stream.Stream<A>,
  options: RealtimeChannel.DecodeOptions | undefined,
  decode: (item: A) => B | Skipped,
  runFork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>
): Stream.Stream<B, PayloadDecodeError> => {
  const fail = options?.onDecodeError === "fail"
  return Stream.transformPull(stream, (upstream) =>
    Effect.sync(() => {
      // set once a payload did not match (fail mode): the next pull fails with it
      let failure: PayloadDecodeError | undefined
      const pull: Pull.Pull<Arr.NonEmptyReadonlyArray<B>, PayloadDecodeError> = Effect.suspend(() =>
        failure !== undefined ? Effect.fail(failure) : Effect.flatMap(upstream, (chunk) => {
          const out: Array<B> = []
          let logs: Array<Effect.Effect<void>> | undefined
          for (let i = 0; i < chunk.length; i++) {
            const result = decode(chunk[i]!)
            if (!(result instanceof Skipped)) {
              out.push(result)
            } else if (fail && result.error !== undefined) {
              failure = result.error
              break
            } else {
              ;(logs ??= []).push(result.log)
            }
          }
          if (logs !== undefined) runFork(Effect.all(logs, { discard: true }))
          return out.length > 0 ? Effect.succeed(out as unknown as Arr.NonEmptyReadonlyArray<B>) : pull
        })
      )
      return pull
    }))
}
