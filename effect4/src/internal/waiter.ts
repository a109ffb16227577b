import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"

/**
 * One outcome, settled once and handed to one waiter: a fiber (`await`) or a callback (`listen`).
 * The waiting primitive of the transport's pending replies and of the channel's join waits. A
 * callback, not a `Deferred`: no fiber bookkeeping per wait (PERFORMANCE.md has the costs).
 *
 * @internal
 */
export class Waiter<A, E> {
  private exit: Exit.Exit<A, E> | undefined = undefined
  private resume: ((exit: Exit.Exit<A, E>) => void) | undefined = undefined

  /** Settles with `exit` unless already settled; returns whether this call settled it. */
  settle(exit: Exit.Exit<A, E>): boolean {
    if (this.exit !== undefined) return false
    this.exit = exit
    const resume = this.resume
    this.resume = undefined
    resume?.(exit)
    return true
  }

  /** Calls `f` with the outcome (at once when settled). */
  listen(f: (exit: Exit.Exit<A, E>) => void): void {
    if (this.exit !== undefined) return f(this.exit)
    this.resume = f
  }

  /** Forgets the waiter: the outcome goes nowhere. */
  cancel(): void {
    this.resume = undefined
  }

  /** Waits for the outcome; `forget` runs if the waiting fiber is interrupted first. */
  await(forget: () => void): Effect.Effect<A, E> {
    return Effect.callback<A, E>((resume) => {
      if (this.exit !== undefined) return resume(this.exit)
      // an `Exit` is an `Effect`: the fiber resumes with it directly
      this.resume = resume
      return Effect.sync(() => {
        this.resume = undefined
        forget()
      })
    })
  }
}
