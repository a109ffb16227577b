/**
 * The core's endpoint parser with its failure as an `InvalidArgument`.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as Url from "../core/url.js"
import { InvalidArgument } from "../RealtimeError.js"

/** @internal */
export type Endpoint = Url.Endpoint

/**
 * `Url.parseEndpoint`, its error detail as an `InvalidArgument`.
 *
 * @internal
 */
export const parseEndpoint = (input: string): Either.Either<Endpoint, InvalidArgument> => {
  const result = Url.parseEndpoint(input)
  return result.ok ? Either.right(result.value) : Either.left(new InvalidArgument({ detail: result.error }))
}
