/**
 * Postgres-changes bindings of the test server, over its filter evaluator (`./filter.ts`).
 */
import * as Result from "../result.js"
import * as PostgresFilter from "./filter.js"

/** The `data` of a `postgres_changes` message. */
export interface Change {
  readonly schema: string
  readonly table: string
  readonly commit_timestamp: string
  readonly type: "INSERT" | "UPDATE" | "DELETE"
  readonly columns: ReadonlyArray<{ readonly name: string; readonly type: string }>
  readonly record?: Readonly<Record<string, unknown>> | undefined
  readonly old_record?: Readonly<Record<string, unknown>> | undefined
  readonly errors: ReadonlyArray<string> | null
}

/** A subscribed binding. */
export interface Subscription {
  readonly id: number
  readonly select: ReadonlyArray<string> | null
  readonly matches: (change: Change) => boolean
}

/** The binding id the join reply echoes: equal for equal param maps. */
export const bindingId = (params: Readonly<Record<string, unknown>>): number => PostgresFilter.bindingId(params)

/** Parses a binding as the server does; `Left` carries the server's error text. */
export const subscribe = (
  params: Readonly<Record<string, unknown>>,
  id: number
): Result.Result<Subscription, string> =>
  Result.map(PostgresFilter.parseSubscriptionParams(params), (parsed) => ({
    id,
    select: parsed.select,
    matches: (change) => PostgresFilter.matchesBinding(parsed, change)
  }))

/**
 * The change as delivered to a channel whose matching subscriptions are `matched`: rows projected to
 * the union of their `select`s (the whole row when any of them selects everything).
 */
export const projectFor = (change: Change, matched: ReadonlyArray<Subscription>): Change => {
  if (matched.some((s) => s.select === null)) return change
  const columns = new Set(matched.flatMap((s) => s.select ?? []))
  const select = [...columns]
  return {
    ...change,
    columns: change.columns.filter((c) => columns.has(c.name)),
    ...(change.record === undefined ? {} : { record: PostgresFilter.project(change.record, select) }),
    ...(change.old_record === undefined ? {} : { old_record: PostgresFilter.project(change.old_record, select) })
  }
}
