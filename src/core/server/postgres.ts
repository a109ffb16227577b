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

const INT4_MIN = -2_147_483_648
const INT4_MAX = 2_147_483_647

/**
 * The column type a Postgres table would most likely have for a value (see `ChangeInput.columns`):
 * an integer within int4's range is `int4` (so `{ total: 10 }` decodes as a number with the default
 * `int8: "string"`), beyond it `int8`, another number `float8`, a boolean `bool`, a
 * `Date` `timestamptz`, a flat array of one scalar kind its array type (`_int4`, `_text`, …), a
 * string or null `text`, anything else `jsonb`.
 */
export const inferType = (value: unknown): string => {
  if (Array.isArray(value)) {
    let element: string | undefined
    for (const item of value) {
      if (item === null) continue
      const type = Array.isArray(item) || typeof item === "object" ? "jsonb" : inferType(item)
      if (type === "jsonb") return "jsonb"
      // int4 and int8 elements widen to int8; any other mix is not one array type
      if (element === undefined || element === type) element = type
      else if ((element === "int4" || element === "int8") && (type === "int4" || type === "int8")) element = "int8"
      else return "jsonb"
    }
    return element === undefined ? "jsonb" : `_${element}`
  }
  switch (typeof value) {
    case "boolean":
      return "bool"
    case "bigint":
      return "int8"
    case "number":
      return !Number.isInteger(value) ? "float8" : value >= INT4_MIN && value <= INT4_MAX ? "int4" : "int8"
    case "string":
    case "undefined":
      return "text"
    default:
      return value === null ? "text" : value instanceof Date ? "timestamptz" : "jsonb"
  }
}
