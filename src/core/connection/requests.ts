/**
 * The socket-wide refs, and the registry of requests waiting for their `phx_reply`.
 */
import type { Timer } from "./deadlines.js"

/** The socket-wide ref counter: `"1"`, `"2"`, …, wrapping to `"1"` after the largest safe integer. */
export class Refs {
  private counter = 0

  /** A fresh ref. */
  next(): string {
    this.counter = this.counter === Number.MAX_SAFE_INTEGER ? 1 : this.counter + 1
    return String(this.counter)
  }
}

/** A request waiting for its reply, completed once with an outcome `O` (each edition's `Exit`). */
export interface Request<O> {
  readonly topic: string
  readonly joinRef: string | null
  /** Whether its frame was written (on the current connection, whose end fails it). */
  written: boolean
  /** Its deadline on the open connection, if it has one. */
  timer: Timer | undefined
  complete(outcome: O): void
}

/** The requests waiting for a reply, by ref (the transport's pending requests). */
export class Registry<R extends Request<O>, O> {
  private readonly byRef = new Map<string, R>()

  /** Registers `request` under `ref`. */
  set(ref: string, request: R): void {
    this.byRef.set(ref, request)
  }

  /** Forgets `request` (if `ref` is still its). */
  forget(ref: string, request: R): void {
    if (this.byRef.get(ref) === request) this.byRef.delete(ref)
  }

  /**
   * Takes the request a reply answers: the same ref, topic and join (a v1 frame carries no join
   * ref); `undefined` when none (the reply is then an ordinary message of its topic).
   */
  take(ref: string, topic: string, joinRef: string | null): R | undefined {
    const request = this.byRef.get(ref)
    if (request === undefined || request.topic !== topic || (joinRef !== null && joinRef !== request.joinRef)) {
      return undefined
    }
    this.byRef.delete(ref)
    return request
  }

  /** Completes the requests written on a connection that ended with `outcome`: their replies will never come. */
  failWritten(outcome: O): void {
    for (const [ref, request] of this.byRef) {
      if (request.written) {
        this.byRef.delete(ref)
        request.complete(outcome)
      }
    }
  }

  /** Completes every request with `outcome`. */
  failAll(outcome: O): void {
    for (const request of this.byRef.values()) request.complete(outcome)
    this.byRef.clear()
  }
}
