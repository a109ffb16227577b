/**
 * Catching up after a rejoin on a channel with broadcast replay: where the rejoin's replay starts,
 * the replay of one rejoin while it arrives, the ids already delivered, and why a gap may hide
 * missed events: the arithmetic and bookkeeping, with the settle timer's type left to the edition.
 */

/** The server's replay limit (also its default). */
export const REPLAY_LIMIT = 25
/** How long the server keeps messages for replay, in milliseconds. */
export const REPLAY_RETENTION_MILLIS = 72 * 3_600_000
/** How long without a replayed broadcast after which a rejoin's replay is taken to have ended, in ms. */
export const REPLAY_SETTLE_MILLIS = 1_000

/** The replay of one rejoin, while it arrives (`Timer`: the edition's handle of the settle timer). */
export interface CatchUp<Timer> {
  readonly downtimeMillis: number
  /** Where its replay started (kept when the join is lost again before it ends). */
  readonly from: number
  readonly limit: number
  /** Replayed broadcasts received (against the limit), and delivered (not seen before). */
  frames: number
  replayed: number
  timer: Timer | undefined
}

/** The last `capacity` ids added, in a ring: `add` says whether an id is new. */
export class RecentIds {
  private readonly ids = new Set<string>()
  private readonly ring: Array<string | undefined>
  private next = 0
  constructor(capacity: number) {
    this.ring = new Array(capacity)
  }
  /** Adds `id`; whether it was new (not among the last `capacity` ids). */
  add(id: string): boolean {
    if (this.ids.has(id)) return false
    const evicted = this.ring[this.next]
    if (evicted !== undefined) this.ids.delete(evicted)
    this.ring[this.next] = id
    this.next = (this.next + 1) % this.ring.length
    this.ids.add(id)
    return true
  }
}

/**
 * Where a rejoin's replay starts: when the socket was last known alive before the join was lost
 * (a socket may die long before that is noticed: a heartbeat interval and its timeout, or a frozen
 * page), less 5 s for the server's clock, in whole milliseconds. What had already arrived is not
 * delivered twice.
 */
export const since = (configured: number, from: number): number => Math.max(configured, Math.floor(from) - 5_000)

/** Why the gap of a finished catch-up may hide missed events ("" when nothing was missed). */
export const gapReason = (catchUp: CatchUp<unknown>, hasPostgresChanges: boolean): string =>
  catchUp.frames >= catchUp.limit
    ? `replay returned its limit (${catchUp.limit}): more may have been sent meanwhile`
    : catchUp.downtimeMillis > REPLAY_RETENTION_MILLIS
    ? "away longer than the server keeps messages for replay (72 h)"
    : hasPostgresChanges
    ? "Postgres changes are not replayed"
    : ""
