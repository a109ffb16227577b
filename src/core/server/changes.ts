/**
 * Postgres changes on the test server: a joined channel's bindings subscribed (or the server's
 * error), and a row change injected by a test delivered to every channel with a matching binding
 * (`ids` of the matching bindings, rows projected to their `select`s).
 */
import * as Constants from "../protocol/constants.js"
import type { Engine } from "./engine.js"
import * as Postgres from "./postgres.js"
import type { ServerChannel } from "./state.js"

/** A row change to deliver as `postgres_changes` (what the server's CDC would see after a commit). */
export interface ChangeInput {
  /** Default `"public"`. */
  readonly schema?: string | undefined
  readonly table: string
  /** Case-insensitive. */
  readonly type: "INSERT" | "UPDATE" | "DELETE" | "insert" | "update" | "delete"
  /** The new row (INSERT, UPDATE). */
  readonly record?: Readonly<Record<string, unknown>> | undefined
  /** The old row (UPDATE, DELETE; default `{}`). */
  readonly old_record?: Readonly<Record<string, unknown>> | undefined
  /**
   * Default: inferred from the row's values, as a Postgres table would most likely have them: an
   * integer within int4's range (±2^31) is `int4` (a JS number, so `{ total: 10 }` matches
   * `Schema.Number`), a larger one `int8` (a string with the client's default `int8:
   * "string"`), another number `float8`, a boolean `bool`, a string or null `text`, a `Date`
   * `timestamptz`, a flat array of one scalar kind `_int4` / `_int8` / `_float8` / `_bool` /
   * `_text`, anything else `jsonb`. Give `columns` to test other types (`numeric`, `uuid`, …).
   */
  readonly columns?: ReadonlyArray<{ readonly name: string; readonly type: string }> | undefined
  /** Default: the server's `Clock` time, ISO 8601. */
  readonly commit_timestamp?: string | undefined
  /** e.g. `["Error 401: Unauthorized"]`, `["Error 413: Payload Too Large"]`. Default `null`. */
  readonly errors?: ReadonlyArray<string> | null | undefined
}

/** The change a `ChangeInput` stands for, with its defaults (`now`: the server's time in milliseconds). */
export const fromInput = (change: ChangeInput, now: number): Postgres.Change => {
  const type = change.type.toUpperCase() as Postgres.Change["type"]
  const record = type === "DELETE" ? undefined : change.record ?? {}
  const oldRecord = type === "INSERT" ? undefined : change.old_record ?? {}
  const row = record ?? oldRecord ?? {}
  return {
    schema: change.schema ?? "public",
    table: change.table,
    commit_timestamp: change.commit_timestamp ?? new Date(now).toISOString(),
    type,
    columns: change.columns ?? Object.keys(row).map((name) => ({ name, type: Postgres.inferType(row[name]) })),
    ...(record === undefined ? {} : { record }),
    ...(oldRecord === undefined ? {} : { old_record: oldRecord }),
    errors: change.errors ?? null
  }
}

/** Subscribes a joined channel's bindings: `Subscribed to PostgreSQL`, or the first binding's error. */
export const subscribe = (engine: Engine, channel: ServerChannel) => {
  const subscriptions: Array<Postgres.Subscription> = []
  for (const binding of channel.bindings) {
    const result = Postgres.subscribe(binding.params, binding.id)
    if (!result.ok) {
      channel.subscriptions = []
      return engine.system(channel, "postgres_changes", "error", result.error)
    }
    subscriptions.push(result.value)
  }
  channel.subscriptions = subscriptions
  engine.system(channel, "postgres_changes", "ok", "Subscribed to PostgreSQL")
}

/** Delivers a row change to every channel with a matching binding; returns how many channels got it. */
export const emit = (engine: Engine, change: Postgres.Change): number => {
  let channels = 0
  for (const connection of engine.connections.values()) {
    for (const channel of connection.channels.values()) {
      if (channel.subscriptions.length === 0) continue
      const ids: Array<number> = []
      const matched: Array<Postgres.Subscription> = []
      for (const subscription of channel.subscriptions) {
        if (!ids.includes(subscription.id) && subscription.matches(change)) {
          ids.push(subscription.id)
          matched.push(subscription)
        }
      }
      if (ids.length === 0) continue
      engine.send(connection, {
        joinRef: null,
        ref: null,
        topic: channel.topic,
        event: Constants.Events.postgresChanges,
        payload: { ids, data: Postgres.projectFor(change, matched) }
      })
      channels++
    }
  }
  engine.stats.changesDelivered += channels
  engine.env.publish({ _tag: "ChangeEmitted", table: `${change.schema}.${change.table}`, delivered: channels })
  return channels
}
