/**
 * The reconnect loop's bookkeeping: which attempt this is, when the backoff starts over, and which
 * device signal ends a wait.
 */

/** The reason of the `Offline` state. */
export const OFFLINE_REASON = "the device reports no network"

/**
 * The attempt counter: 0 is the first connection, n the n-th reconnect. The backoff starts over
 * only after a connection held for `stableMillis` (a heartbeat interval): a server that accepts the
 * socket and closes it at once must not be reconnected to every second.
 */
export class Attempts {
  attempt = 0

  constructor(private readonly stableMillis: number) {}

  /** The network came back after an offline wait: the backoff starts over. */
  online(): void {
    if (this.attempt > 0) this.attempt = 1
  }

  /**
   * A connection that opened at `openedAt` (`undefined`: it never opened) ended at `now`: counts the
   * attempt, and returns whether the backoff starts over.
   */
  ended(openedAt: number | undefined, now: number): boolean {
    if (openedAt !== undefined && now - openedAt >= this.stableMillis) {
      this.attempt = 1
      return true
    }
    this.attempt++
    return false
  }
}

/**
 * The one wait a device signal ends (the reconnect backoff, the heartbeat's sleep, the offline
 * wait), and when the last connection attempt began: the network coming back ends it at once; a
 * page that comes back ends it if the socket is open (it is probed at once) or at most once a
 * second after the last attempt began (switching tabs during an outage must not storm the server).
 */
export class Signals {
  private wake: (() => void) | undefined = undefined
  private attemptedAt = 0

  /** A connection attempt begins at `now`. */
  attempting(now: number): void {
    this.attemptedAt = now
  }

  /** Waits for the next signal that ends a wait: `resume` is called once, then forgotten. */
  wait(resume: () => void): void {
    this.wake = () => {
      this.wake = undefined
      resume()
    }
  }

  /**
   * Waits for the network: `resume` is called once `isOnline` says so, checked now (then `true` is
   * returned and nothing waits) and on every signal after (none is lost in between).
   */
  waitOnline(isOnline: () => boolean, resume: () => void): boolean {
    const check = () => {
      if (!isOnline()) return false
      this.wake = undefined
      resume()
      return true
    }
    if (check()) return true
    this.wake = () => {
      check()
    }
    return false
  }

  /** Forgets the wait. */
  cancel(): void {
    this.wake = undefined
  }

  /** A device signal (`Online`, `Resumed`, …) at `now`, the socket open or not. */
  signal(tag: string, open: boolean, now: number): void {
    if (tag === "Online") return this.wake?.()
    if (tag === "Resumed" && (open || now - this.attemptedAt >= 1_000)) this.wake?.()
  }
}
