/**
 * Waiting a few scheduler turns in the Effect 3 suite, where a forked fiber, a woken sleep or a
 * fiber resumed by a callback runs in a later turn (Effect 4 runs them sooner).
 */
import { Effect } from "effect"

/** Ten turns: enough for a stream forked just before to subscribe, or a woken fiber to go on. */
export const settle: Effect.Effect<void> = Effect.asVoid(Effect.repeatN(Effect.yieldNow(), 10))
