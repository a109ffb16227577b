import * as Clock from "effect/Clock"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Pull from "effect/Pull"
import * as Schedule from "effect/Schedule"

type Step = (now: number, input: unknown) => Pull.Pull<[unknown, Duration.Duration], never, unknown>

/**
 * Steps a Schedule by hand: `next` computes the next delay without sleeping (so the caller can
 * publish "reconnecting in N ms" first), `reset` starts over (on a successful open or join).
 * `Schedule.toStepWithSleep` sleeps inside the step and hides the delay; `Effect.retry` never
 * resets.
 *
 * @internal
 */
export interface Backoff {
  /** The delay before the next attempt, or `None` when the schedule is over. */
  readonly next: (input: unknown) => Effect.Effect<Option.Option<Duration.Duration>>
  /** Starts the schedule over (its next delay is its first). */
  readonly reset: () => void
}

/**
 * A `Backoff` over `schedule`. The schedule's state lives in the step function of
 * `Schedule.toStep`; a reset drops it, and the next `next` makes a fresh one (in the caller's
 * fiber, with its services).
 *
 * @internal
 */
export const make = (schedule: Schedule.Schedule<unknown, unknown>): Backoff => {
  let step: Step | undefined
  const run = (current: Step, input: unknown): Effect.Effect<Option.Option<Duration.Duration>> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      current(now, input).pipe(
        Effect.map(([, delay]) => Option.some(delay)),
        // `Cause.Done`: the schedule is over
        Pull.catchDone(() => Effect.succeedNone)
      ))
  return {
    next: (input) =>
      Effect.suspend(() =>
        step !== undefined ? run(step, input) : Effect.flatMap(Schedule.toStep(schedule), (fresh) => {
          step = fresh
          return run(fresh, input)
        })
      ),
    reset: () => {
      step = undefined
    }
  }
}
