/**
 * The test server's `realtime.messages`: rows written by database broadcasts, dropped after 72 hours
 * as the server's janitor does, and replayed to private joins that ask for it (`config.broadcast.replay`).
 */
import * as Topic from "../topic.js"
import type * as JoinConfig from "./joinConfig.js"
import type * as RS from "./model.js"
import { isRecord } from "./payload.js"

/** Partitions older than 72 hours are dropped by the server's janitor: such rows are never replayed. */
export const MESSAGE_RETENTION_MILLIS = 72 * 60 * 60 * 1000

/** The replay query's hard limit; also its default. */
const REPLAY_MAX = 25

/** The range `DateTime.from_unix(since, :millisecond)` accepts (years -9999 to 9999). */
const SINCE_MIN = -377_705_116_800_000
const SINCE_MAX = 253_402_300_799_999

/**
 * The replay part of a join (`RealtimeChannel.can_replay?/3`, `maybe_replay_messages/5`,
 * `Messages.replay/5`): a join error, what to replay, or `None` (nothing asked, or a replay that is not a map).
 */
export const replayParams = (
  config: JoinConfig.JoinConfig,
  broadcastRead: boolean,
  subtopic: string
):
  | { readonly _tag: "None" }
  | { readonly _tag: "Error"; readonly reason: string }
  | { readonly _tag: "Replay"; readonly since: number; readonly limit: number } =>
{
  const replay = config.replay
  if (replay === undefined) return { _tag: "None" }
  if (config.private && !broadcastRead) {
    return {
      _tag: "Error",
      reason: `Unauthorized: You do not have permissions to read from this Channel topic: ${subtopic}`
    }
  }
  if (!config.private) {
    return { _tag: "Error", reason: "UnableToReplayMessages: Replay is not allowed for public channels" }
  }
  // a replay that is not a map is ignored (the join proceeds without replay)
  if (!isRecord(replay)) return { _tag: "None" }
  const since = replay.since
  // `replay_params["limit"] || 25`: nil and false fall back
  const limit = replay.limit === undefined || replay.limit === null || replay.limit === false
    ? REPLAY_MAX
    : replay.limit
  if (
    typeof since !== "number" || !Number.isInteger(since) || since < SINCE_MIN || since > SINCE_MAX ||
    typeof limit !== "number" || !Number.isInteger(limit)
  ) {
    return { _tag: "Error", reason: "UnableToReplayMessages: Replay params are not valid" }
  }
  return { _tag: "Replay", since, limit: Math.max(1, Math.min(limit, REPLAY_MAX)) }
}

/** `realtime.messages`, in insertion order, on the server's clock. */
export class MessageStore {
  private rows: Array<RS.StoredMessage> = []
  private readonly ids = new Set<string>()
  private oldest = Infinity
  constructor(private readonly now: () => number) {}

  /** Stores a row (`topic`: the subtopic), unless its `id` is stored already. */
  insert(row: {
    readonly id: string
    readonly topic: string
    readonly event: string
    readonly payload: unknown
    readonly private: boolean
  }) {
    this.prune()
    if (this.ids.has(row.id)) return
    const insertedAt = this.now()
    this.rows.push({
      id: row.id,
      topic: row.topic,
      event: row.event,
      payload: row.payload instanceof Uint8Array ? row.payload.slice() : row.payload,
      private: row.private,
      insertedAt
    })
    this.ids.add(row.id)
    this.oldest = Math.min(this.oldest, insertedAt)
  }

  /** Rows (of a topic, `"room"` or `"realtime:room"`), oldest first. */
  list(topic?: string): ReadonlyArray<RS.StoredMessage> {
    this.prune()
    if (topic === undefined) return [...this.rows]
    const subtopic = Topic.subTopicOf(topic)
    return this.rows.filter((row) => row.topic === subtopic)
  }

  /**
   * `Messages.replay`: the topic's private broadcast rows inserted at or after `since`, the newest
   * `limit` (ties: insertion order), oldest first.
   */
  replay(subtopic: string, since: number, limit: number): ReadonlyArray<RS.StoredMessage> {
    this.prune()
    const rows = this.rows
      .filter((row) => row.topic === subtopic && row.private && row.insertedAt >= since)
      .sort((a, b) => a.insertedAt - b.insertedAt) // stable: a `TestClock` set back keeps the order sane
    return rows.slice(Math.max(0, rows.length - limit))
  }

  /** The janitor: rows older than the retention are gone. */
  private prune() {
    const cutoff = this.now() - MESSAGE_RETENTION_MILLIS
    if (this.oldest >= cutoff) return
    this.oldest = Infinity
    this.rows = this.rows.filter((row) => {
      if (row.insertedAt < cutoff) {
        this.ids.delete(row.id)
        return false
      }
      this.oldest = Math.min(this.oldest, row.insertedAt)
      return true
    })
  }
}
