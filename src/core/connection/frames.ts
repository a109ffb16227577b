/**
 * What the read path needs besides its Effects: the reply a `phx_reply` carries, the words of a
 * refused frame, and the throttle of the log about undecodable frames; and the heartbeat it answers.
 */
import { PHOENIX_TOPIC } from "../protocol/constants.js"
import type * as Model from "../protocol/model.js"

/** A `phx_reply`: `status` is `"ok"` or `"error"` from the server. */
export interface Reply {
  readonly status: string
  readonly response: unknown
}

/** The heartbeat with ref `ref`. */
export const heartbeat = (ref: string): Model.Message => ({
  joinRef: null,
  ref,
  topic: PHOENIX_TOPIC,
  event: "heartbeat",
  payload: {}
})

/** The reply in a `phx_reply`'s payload (one without a string status is an error reply of it all). */
export const replyOf = (payload: unknown): Reply => {
  const p = payload as { readonly status?: unknown; readonly response?: unknown } | null
  return typeof p === "object" && p !== null && typeof p.status === "string"
    ? { status: p.status, response: p.response }
    : { status: "error", response: p }
}

/** The detail of a frame skipped for being over `maxFrameBytes` (`size`: a text frame's length). */
export const tooLargeDetail = (frame: string | Uint8Array, size: number, maxFrameBytes: number): string =>
  `a ${typeof frame === "string" ? "text" : "binary"} frame of ${
    typeof frame === "string" ? "at least " : ""
  }${size} bytes, over maxFrameBytes (${maxFrameBytes})`

/** The detail of a frame the socket itself refused (`ws` closed with 1009). */
export const refusedDetail = (maxFrameBytes: number): string =>
  `the socket refused a frame over maxFrameBytes (${maxFrameBytes}) and closed with 1009`

/** At most one log line a minute about undecodable frames (after the first). */
export const BAD_FRAME_LOG_INTERVAL = 60_000

/**
 * The log of undecodable frames: the first is logged, and those that follow within a minute are
 * logged as one summary at the minute's end, so a flood logs a line a minute, not a line a frame.
 */
export class BadFrameLog<E> {
  total = 0
  skipped = 0
  loggedAt = -Infinity
  summary = false
  last: E | undefined = undefined

  /**
   * Counts a bad frame seen at `now`: `"log"` to log it now, a number to schedule the summary in
   * that many milliseconds, `undefined` when a summary is already scheduled.
   */
  record(error: E, now: number): "log" | number | undefined {
    this.total++
    if (!this.summary && now - this.loggedAt >= BAD_FRAME_LOG_INTERVAL) {
      this.loggedAt = now
      return "log"
    }
    this.skipped++
    this.last = error
    if (this.summary) return undefined
    this.summary = true
    return Math.max(0, this.loggedAt + BAD_FRAME_LOG_INTERVAL - now)
  }

  /** Takes what the summary reports, at `now`, and starts a new minute. */
  takeSummary(now: number): { readonly skipped: number; readonly total: number; readonly last: E | undefined } {
    const { last, skipped, total } = this
    this.summary = false
    this.skipped = 0
    this.loggedAt = now
    return { skipped, total, last }
  }
}
