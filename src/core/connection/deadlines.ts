/**
 * The deadlines of the requests written on the open connection: one sorted list, read by one fiber
 * of the connection that sleeps until the earliest, so that a request costs no fiber and no timer
 * of its own. With one timeout for every request a new deadline goes at the end and the sleeper is
 * not woken.
 */

/** A request's deadline; `fire` is cleared once the request completed (the timer is then skipped). */
export interface Timer {
  readonly deadline: number
  fire: (() => void) | undefined
}

/** The sorted deadlines, and the one the sleeping fiber waits for. */
export class Deadlines {
  private readonly timers: Array<Timer> = []
  private sleepingUntil = Infinity

  /** `wakeSleeper` is called when a deadline earlier than the one slept until is added. */
  constructor(private readonly wakeSleeper: () => void) {}

  /** Adds a deadline (milliseconds on the clock of `takeDue`) that calls `fire` unless disarmed. */
  add(deadline: number, fire: () => void): Timer {
    const timer: Timer = { deadline, fire }
    const timers = this.timers
    let i = timers.length
    while (i > 0 && timers[i - 1]!.deadline > deadline) i--
    if (i === timers.length) timers.push(timer)
    else timers.splice(i, 0, timer)
    if (deadline < this.sleepingUntil) this.wakeSleeper()
    return timer
  }

  /** Forgets what is left from the previous connection (its requests have completed by then). */
  dropStale(): void {
    const timers = this.timers
    const stale = timers.findIndex((timer) => timer.fire !== undefined)
    timers.splice(0, stale < 0 ? timers.length : stale)
  }

  /** Takes the timers due at `now`, with the disarmed ones before them. */
  takeDue(now: number): Array<Timer> {
    const timers = this.timers
    let expired = 0
    while (
      expired < timers.length && (timers[expired]!.fire === undefined || timers[expired]!.deadline <= now)
    ) expired++
    return timers.splice(0, expired)
  }

  /** The deadline to sleep until now (`Infinity`: none, sleep until woken). */
  sleep(): number {
    this.sleepingUntil = this.timers.length === 0 ? Infinity : this.timers[0]!.deadline
    return this.sleepingUntil
  }
}

/** Whether any of `due` is still armed (its request still waits). */
export const anyArmed = (due: ReadonlyArray<Timer>): boolean => due.some((timer) => timer.fire !== undefined)

/** Fires the armed timers of `due`, each once. */
export const fire = (due: ReadonlyArray<Timer>): void => {
  for (const timer of due) {
    const fire = timer.fire
    timer.fire = undefined
    fire?.()
  }
}

/** Disarms a request's timer, if it has one. */
export const disarm = (timer: Timer | undefined): void => {
  if (timer !== undefined) timer.fire = undefined
}
