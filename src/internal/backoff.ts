import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as Intervals from "effect/ScheduleIntervals"

/**
 * Steps a Schedule by hand: `next` computes the next delay without sleeping (so the caller can
 * publish "reconnecting in N ms" first), `reset` starts over (on a successful open or join).
 * `Schedule.driver` sleeps inside `next` and hides the delay; `Effect.retry` never resets.
 *
 * @internal
 */
export interface Backoff {
  readonly next: (input: unknown) => Effect.Effect<Option.Option<Duration.Duration>>
  readonly reset: () => void
}

/** @internal */
export const make = (schedule: Schedule.Schedule<unknown, unknown>): Backoff => {
  let state: unknown = schedule.initial
  return {
    next: (input) =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now) =>
          Effect.map(schedule.step(now, input, state), ([next, _out, decision]) => {
            if (ScheduleDecision.isDone(decision)) return Option.none()
            state = next
            return Option.some(Duration.millis(Math.max(0, Intervals.start(decision.intervals) - now)))
          })
      ),
    reset: () => {
      state = schedule.initial
    }
  }
}
