/**
 * Rate counters of the test server. Time comes from the caller (an edition's clock, e.g. Effect's
 * `Clock`, so that `TestClock` drives them).
 */

/**
 * Counts hits in fixed windows of `windowMillis` starting at the first hit after the previous window
 * ended (a simplification of the server's rolling averages: a burst over the limit trips it at once).
 */
export class WindowCounter {
  private start = Number.NEGATIVE_INFINITY
  private count = 0
  constructor(private readonly windowMillis: number) {}

  /** Records a hit at `now`; returns the count in the current window, this hit included. */
  hit(now: number): number {
    this.roll(now)
    return ++this.count
  }

  /** The count in the window containing `now`, without a hit. */
  current(now: number): number {
    this.roll(now)
    return this.count
  }

  private roll(now: number) {
    if (now - this.start >= this.windowMillis || now < this.start) {
      this.start = now
      this.count = 0
    }
  }
}

/**
 * Counts hits in a sliding window (the server's per-channel presence limit: N calls per window).
 */
export class SlidingCounter {
  private readonly hits: Array<number> = []
  constructor(private readonly windowMillis: number) {}

  /** Records a hit at `now`; returns the number of hits within the window ending at `now`. */
  hit(now: number): number {
    this.hits.push(now)
    const from = now - this.windowMillis
    while (this.hits.length > 0 && this.hits[0]! <= from) this.hits.shift()
    return this.hits.length
  }
}
