/**
 * A tiny neutral result type: the core's replacement for `effect/Either`. Each edition converts it
 * at its boundary (the Effect 3 edition to an `Either` where a public API returns one).
 */

/**
 * The outcome of a computation that may fail: a value (`ok: true`) or an error (`ok: false`).
 */
export type Result<A, E> = Ok<A> | Err<E>

/** A successful result. */
export interface Ok<A> {
  readonly ok: true
  readonly value: A
}

/** A failed result. */
export interface Err<E> {
  readonly ok: false
  readonly error: E
}

/** A successful result holding `value`. */
export const ok = <A>(value: A): Ok<A> => ({ ok: true, value })

/** A failed result holding `error`. */
export const err = <E>(error: E): Err<E> => ({ ok: false, error })

/** The value of a successful result mapped by `f`; a failure as it is. */
export const map = <A, E, B>(result: Result<A, E>, f: (a: A) => B): Result<B, E> =>
  result.ok ? ok(f(result.value)) : result
