import type * as Scheduler from "effect/Scheduler"

/**
 * Runs a callback after a number of the scheduler's turns, without a fiber: one dispatcher per
 * scheduler, shared by every caller, so that the callbacks due in the same turn run in one batch
 * (one `setImmediate` on Node for all of them, where a fiber's `Effect.yieldNow` schedules one per
 * fiber and captures an async context on each suspension: PERFORMANCE.md, Effect 4).
 *
 * A turn of the shared dispatcher may have been scheduled before a turn the caller's fiber started
 * (a fork's): count one more turn than the levels to wait for.
 *
 * A callback that throws does not stop the others of its turn; its throw goes to `onError` (out of
 * any fiber, it would otherwise reach the event loop and end the process).
 *
 * @internal
 */
export const afterTurns = (
  scheduler: Scheduler.Scheduler,
  turns: number,
  f: () => void,
  onError: (error: unknown) => void
): void => {
  const dispatcher = dispatcherOf(scheduler)
  let left = turns
  const turn = (): void => {
    if (--left > 0) return dispatcher.scheduleTask(turn, 0)
    try {
      f()
    } catch (error) {
      onError(error)
    }
  }
  dispatcher.scheduleTask(turn, 0)
}

const dispatchers = new WeakMap<Scheduler.Scheduler, Scheduler.SchedulerDispatcher>()

const dispatcherOf = (scheduler: Scheduler.Scheduler): Scheduler.SchedulerDispatcher => {
  let dispatcher = dispatchers.get(scheduler)
  if (dispatcher === undefined) dispatchers.set(scheduler, dispatcher = scheduler.makeDispatcher())
  return dispatcher
}
