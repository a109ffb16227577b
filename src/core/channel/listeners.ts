/**
 * Who listens to a channel: the sinks of its event streams (fed by the read loop, one call per
 * event) and the mailboxes of its status and gap streams, kept in arrays that are copied on write.
 *
 * The arrays are never changed in place: a consumer woken while an array is iterated (in Effect 4 a
 * fiber resumed from a callback runs at once, inside the call) may add or remove a listener before
 * the iteration ends. Iterating stays allocation-free; only adding and removing copy.
 */
import type * as Config from "./config.js"

/** An event stream's end of the channel: fed synchronously, one event at a time. */
export interface Sink<A> {
  /** Queues `value` for the stream's consumer (counted as dropped when the consumer lags). */
  readonly unsafeOffer: (value: A) => void
  /** The stream ends once what it has queued is taken. */
  readonly end: () => void
}

/** A status or gap stream's end of the channel. */
export interface Mailbox<A> {
  /** Queues `value` (false: dropped) and wakes the consumer if `wake`. */
  readonly offer: (value: A, wake: boolean) => boolean
  /** The stream ends once what it has queued is taken. */
  readonly end: () => void
}

/** A broadcast as the channel's streams receive it (shared by them all: read-only). */
export interface BroadcastItem {
  readonly event: string
  readonly payload: unknown
  readonly meta: { readonly replayed?: boolean | undefined; readonly id?: string | undefined } | undefined
}

/** A Postgres changes stream's sink, and the binding it listens to (`-1`: every binding). */
export interface PostgresEntry {
  readonly index: number
  readonly listener: Sink<unknown>
}

/** A `system` message as the channel's streams receive it. */
export type SystemItem = Config.SystemMessage

/** `array` with `value` added (a new array). */
export const adding = <A>(array: ReadonlyArray<A> | undefined, value: A): ReadonlyArray<A> =>
  array === undefined ? [value] : [...array, value]

/** `array` without `value` (a new array, or `undefined` once empty). */
export const without = <A>(array: ReadonlyArray<A> | undefined, value: A): ReadonlyArray<A> | undefined => {
  if (array === undefined) return undefined
  const i = array.indexOf(value)
  if (i < 0) return array
  if (array.length === 1) return undefined
  return array.slice(0, i).concat(array.slice(i + 1))
}
