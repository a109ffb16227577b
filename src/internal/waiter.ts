import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as CoreWaiter from "../core/waiter.js"

/**
 * One outcome, settled once and handed to one waiter: a fiber (`await`) or a callback (`listen`).
 * The waiting primitive of the transport's pending replies and of the channel's join waits. A
 * callback, not a `Deferred` (PERFORMANCE.md has the costs).
 *
 * The settle / listen / cancel state is the core's (`core/waiter.ts`); this adds `await`.
 *
 * @internal
 */
export class Waiter<A, E> extends CoreWaiter.Waiter<Exit.Exit<A, E>> {
  /** Waits for the outcome; `forget` runs if the waiting fiber is interrupted first. */
  await(forget: () => void): Effect.Effect<A, E> {
    return Effect.async<A, E>((resume) => {
      const exit = this.outcome
      if (exit !== undefined) return resume(exit)
      this.listen(resume)
      return Effect.sync(() => {
        this.cancel()
        forget()
      })
    })
  }
}
