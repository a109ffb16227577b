/**
 * One outcome, settled once and handed to one listener: the state of each edition's `Waiter`
 * (`internal/waiter.ts`), which adds the wait of a fiber over its own Effect API.
 */

/**
 * One outcome `T` (never `undefined`), settled once and handed to one listener. A later `listen`
 * replaces the listener; `cancel` forgets it.
 */
export class Waiter<T extends {}> {
  private settled: T | undefined = undefined
  private resume: ((outcome: T) => void) | undefined = undefined

  /** The outcome, once settled. */
  get outcome(): T | undefined {
    return this.settled
  }

  /** Settles with `outcome` unless already settled; returns whether this call settled it. */
  settle(outcome: T): boolean {
    if (this.settled !== undefined) return false
    this.settled = outcome
    const resume = this.resume
    this.resume = undefined
    resume?.(outcome)
    return true
  }

  /** Calls `f` with the outcome (at once when settled). */
  listen(f: (outcome: T) => void): void {
    if (this.settled !== undefined) return f(this.settled)
    this.resume = f
  }

  /** Forgets the listener: the outcome goes nowhere. */
  cancel(): void {
    this.resume = undefined
  }
}
