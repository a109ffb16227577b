/**
 * The server side of Postgres-changes subscriptions, for the in-process server: subscription params
 * as `parse_subscription_params/1` reads them (with its error strings), binding ids, and evaluating
 * a parsed filter on a row with Postgres-like semantics. The filter grammar itself is shared with the
 * client (`../postgres/filter.ts`).
 */
import { isRecord } from "../guards.js"
import {
  compareNumeric,
  compareText,
  type Condition,
  inspect,
  type Operator,
  parseArrayLiteral,
  parseDecimal,
  type ParsedFilter,
  parseFilter
} from "../postgres/filter.js"
import * as Result from "../result.js"

// -----------------------------------------------------------------------------
// subscription params
// -----------------------------------------------------------------------------

/**
 * A postgres_changes binding as the server understands it.
 */
export interface SubscriptionParams {
  readonly event: "*" | "INSERT" | "UPDATE" | "DELETE"
  readonly schema: string
  readonly table: string
  readonly filter: ParsedFilter
  readonly select: ReadonlyArray<string> | null
}

/**
 * Parses one entry of the join's `config.postgres_changes` like the server, with its error
 * strings: `event` defaults to `*` (unknown events too), `schema` alone means every table, `table`
 * alone means schema `public`, `select` must be a list and is refused on wildcards.
 */
export const parseSubscriptionParams = (params: unknown): Result.Result<SubscriptionParams, string> => {
  const map: Record<string, unknown> = isRecord(params) ? params : {}
  const has = (key: string) => Object.prototype.hasOwnProperty.call(map, key)
  const event = actionFilter(map)

  let select: ReadonlyArray<string> | null = null
  if (has("select")) {
    const raw = map["select"]
    if (Array.isArray(raw)) {
      const valid = raw.filter((c): c is string => typeof c === "string")
      select = valid.length === 0 ? null : valid
    } else if (typeof raw === "string") {
      return Result.err(
        "Error parsing `select` params: expected a list of column name strings, e.g. select: [\"col1\", \"col2\"]"
      )
    }
  }

  const ok = (schema: string, table: string, filter: ParsedFilter): Result.Result<SubscriptionParams, string> =>
    select !== null && (schema === "*" || table === "*")
      ? Result.err(
        "Column selection is not supported for wildcard subscriptions. Provide an explicit schema and table name."
      )
      : Result.ok({ event, schema, table, filter, select })

  const schema = map["schema"]
  const table = map["table"]
  const filter = map["filter"]
  if (typeof schema === "string" && typeof table === "string" && typeof filter === "string") {
    const parsed = parseFilter(filter)
    return parsed.ok ? ok(schema, table, parsed.value) : parsed
  }
  if (typeof schema === "string" && typeof table === "string" && !has("filter")) return ok(schema, table, [])
  if (typeof schema === "string" && !has("table") && !has("filter")) return ok(schema, "*", [])
  if (typeof table === "string" && !has("schema") && !has("filter")) return ok("public", table, [])
  const prefix = "No subscription params provided. Please provide at least a `schema` or `table` to subscribe to: "
  if (has("user_token") || has("auth_token")) return Result.err(prefix + "<redacted>")
  return Result.err(prefix + inspect(isRecord(params) ? params : params ?? null))
}

const actionFilter = (map: Record<string, unknown>): SubscriptionParams["event"] => {
  const event = map["event"]
  if (typeof event !== "string") return "*"
  const upper = event.toUpperCase()
  return upper === "INSERT" || upper === "UPDATE" || upper === "DELETE" ? upper : "*"
}

/**
 * A deterministic id for a binding's params, equal for equal param maps (key order does not
 * matter). The server uses `:erlang.phash2(params)`; this is a stand-in with the same range
 * (0..2^27-1): 32-bit FNV-1a over the canonical JSON (sorted keys, `undefined` dropped), folded to 27
 * bits.
 */
export const bindingId = (params: unknown): number => {
  const bytes = new TextEncoder().encode(canonicalJson(params))
  let hash = 0x811c9dc5
  for (const byte of bytes) {
    hash ^= byte
    hash = Math.imul(hash, 0x01000193)
  }
  hash >>>= 0
  return (hash ^ (hash >>> 27)) & 0x7ffffff
}

const canonicalJson = (u: unknown): string => {
  if (Array.isArray(u)) return `[${u.map((x) => (x === undefined ? "null" : canonicalJson(x))).join(",")}]`
  if (typeof u === "bigint") return u.toString()
  if (u !== null && typeof u === "object") {
    const keys = Object.keys(u).filter((k) => (u as Record<string, unknown>)[k] !== undefined).sort()
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((u as Record<string, unknown>)[k])}`).join(",")}}`
  }
  return JSON.stringify(u) ?? "null"
}

// -----------------------------------------------------------------------------
// matching changes
// -----------------------------------------------------------------------------

/** A column of a row the filter is evaluated on. */
export interface Column {
  readonly name: string
  readonly type: string
}

/**
 * The parts of a change the server matches bindings on.
 */
export interface ChangeLike {
  readonly type: string
  readonly schema: string
  readonly table: string
  readonly record?: Readonly<Record<string, unknown>> | null | undefined
  readonly old_record?: Readonly<Record<string, unknown>> | null | undefined
  readonly columns?: ReadonlyArray<Column> | null | undefined
}

/**
 * Whether a change is delivered to a binding: event (`*` or equal), schema and table (`*` or
 * equal), and the filter, evaluated on `record` (INSERT, UPDATE) or on `old_record` (DELETE, where
 * it usually holds only the primary key).
 */
export const matchesBinding = (params: SubscriptionParams, change: ChangeLike): boolean => {
  const type = change.type.toUpperCase()
  if (params.event !== "*" && params.event !== type) return false
  if (params.schema !== "*" && params.schema !== change.schema) return false
  if (params.table !== "*" && params.table !== change.table) return false
  if (params.filter.length === 0) return true
  const row = type === "DELETE" ? change.old_record : change.record
  return evaluate(params.filter, row ?? {}, change.columns ?? undefined)
}

/**
 * Keeps the `select`ed columns of a row (all of them when `select` is null).
 */
export const project = (
  row: Readonly<Record<string, unknown>>,
  select: ReadonlyArray<string> | null
): Record<string, unknown> =>
  select === null
    ? { ...row }
    : Object.fromEntries(select.filter((c) => Object.prototype.hasOwnProperty.call(row, c)).map((c) => [c, row[c]]))

/**
 * Evaluates a parsed filter on a row, in Postgres three-valued logic: a condition on a NULL column
 * is unknown (so `eq`, `neq`, `in`, `like`, ... and their `not.` forms never match NULL); only
 * `is` and `isdistinct` are NULL-aware; the row passes when every condition is true.
 *
 * Values are compared by the column's type when `columns` gives it (numbers numerically and
 * exactly, text as text, booleans, timestamps as instants, json structurally), otherwise
 * numerically when both sides are numeric and as strings otherwise. `like`/`ilike` use `%` and `_`
 * with `\` as escape; `match`/`imatch` are regular expressions (an invalid one never matches).
 *
 * Like the server (which joins filters with the row's columns), a condition on a column absent from
 * the row is skipped, and a row on which every condition was skipped does not pass.
 */
export const evaluate = (
  filter: ParsedFilter,
  row: Readonly<Record<string, unknown>>,
  columns?: ReadonlyArray<Column> | undefined
): boolean => {
  if (filter.length === 0) return true
  const types = new Map((columns ?? []).map((c) => [c.name, c.type]))
  let evaluated = 0
  for (const condition of filter) {
    if (!Object.prototype.hasOwnProperty.call(row, condition.column)) continue
    evaluated++
    const result = evaluateCondition(condition, row[condition.column], types.get(condition.column))
    if (result !== true) return false
  }
  return evaluated > 0
}

type Tri = boolean | null

const not = (t: Tri): Tri => (t === null ? null : !t)

const evaluateCondition = (c: Condition, value: unknown, type: string | undefined): Tri => {
  const result = evaluateOperator(c.operator, c.value, value ?? null, type)
  return c.negate ? not(result) : result
}

const evaluateOperator = (op: Operator, filterValue: string, value: unknown, type: string | undefined): Tri => {
  switch (op) {
    case "is": {
      switch (filterValue.toLowerCase()) {
        case "null":
        case "unknown":
          return value === null
        case "true":
          return value !== null && toBool(value) === true
        case "false":
          return value !== null && toBool(value) === false
        default:
          return null
      }
    }
    case "isdistinct": {
      if (filterValue.toLowerCase() === "null") return value !== null
      if (value === null) return true
      const eq = compare(value, filterValue, type)
      return eq === null ? true : eq !== 0
    }
    case "in": {
      if (value === null) return null
      const elements = parseArrayLiteral(filterValue)
      if (elements === undefined) return null
      let sawNull = false
      for (const element of elements) {
        if (element === null) sawNull = true
        else if (typeof element === "string" && compare(value, element, type) === 0) return true
      }
      return sawNull ? null : false
    }
    case "like":
    case "ilike": {
      if (value === null) return null
      return likeToRegExp(filterValue, op === "ilike").test(asText(value))
    }
    case "match":
    case "imatch": {
      if (value === null) return null
      try {
        return new RegExp(filterValue, op === "imatch" ? "i" : "").test(asText(value))
      } catch {
        return null
      }
    }
    default: {
      if (value === null) return null
      const order = compare(value, filterValue, type)
      if (order === null) return null
      switch (op) {
        case "eq":
          return order === 0
        case "neq":
          return order !== 0
        case "lt":
          return order < 0
        case "lte":
          return order <= 0
        case "gt":
          return order > 0
        case "gte":
          return order >= 0
      }
    }
  }
}

const numericTypes = new Set(["int2", "int4", "int8", "float4", "float8", "numeric", "oid", "money"])
const textTypes = new Set(["text", "varchar", "bpchar", "char", "name", "citext", "uuid"])
const timeTypes = new Set(["timestamp", "timestamptz", "date"])

// Orders a row value against a filter literal: negative, 0, positive, or null when they cannot be
// compared (Postgres would fail to cast the literal).
const compare = (value: unknown, literal: string, type: string | undefined): number | null => {
  const kind = type === undefined ? undefined : type.startsWith("_") ? "array" : type
  if (kind !== undefined && numericTypes.has(kind)) return compareNumeric(asText(value), literal)
  if (kind === "bool" || (kind === undefined && typeof value === "boolean")) {
    const a = toBool(value)
    const b = toBool(literal)
    return a === undefined || b === undefined ? null : Number(a) - Number(b)
  }
  if (kind === "json" || kind === "jsonb") return compareJson(value, literal)
  if (kind !== undefined && timeTypes.has(kind)) {
    const a = Date.parse(asText(value))
    const b = Date.parse(literal)
    if (!Number.isNaN(a) && !Number.isNaN(b)) return Math.sign(a - b)
    return compareText(asText(value), literal)
  }
  if (kind !== undefined && textTypes.has(kind)) return compareText(asText(value), literal)
  if (kind === undefined && (typeof value === "number" || typeof value === "bigint")) {
    return compareNumeric(asText(value), literal)
  }
  if (kind === undefined && typeof value === "object" && value !== null) return compareJson(value, literal)
  const text = asText(value)
  if (parseDecimal(text) !== undefined && parseDecimal(literal) !== undefined) return compareNumeric(text, literal)
  return compareText(text, literal)
}

const compareJson = (value: unknown, literal: string): number | null => {
  let parsed: unknown
  try {
    parsed = JSON.parse(literal)
  } catch {
    return null
  }
  const a = canonicalJson(typeof value === "string" ? tryJson(value) : value)
  const b = canonicalJson(parsed)
  return compareText(a, b)
}

const tryJson = (s: string): unknown => {
  try {
    return JSON.parse(s)
  } catch {
    return s
  }
}

const asText = (value: unknown): string => {
  if (typeof value === "string") return value
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") return String(value)
  return canonicalJson(value)
}

const toBool = (value: unknown): boolean | undefined => {
  if (typeof value === "boolean") return value
  if (typeof value !== "string") return undefined
  switch (value.trim().toLowerCase()) {
    case "t":
    case "true":
    case "y":
    case "yes":
    case "on":
    case "1":
      return true
    case "f":
    case "false":
    case "n":
    case "no":
    case "off":
    case "0":
      return false
    default:
      return undefined
  }
}

// `like` pattern → anchored RegExp: `%` any run, `_` one character, `\x` a literal x.
const likeToRegExp = (pattern: string, insensitive: boolean): RegExp => {
  let source = ""
  const chars = Array.from(pattern)
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!
    if (c === "\\" && i + 1 < chars.length) source += escapeRegExp(chars[++i]!)
    else if (c === "%") source += "[^]*"
    else if (c === "_") source += "[^]"
    else source += escapeRegExp(c)
  }
  return new RegExp(`^${source}$`, insensitive ? "iu" : "u")
}

const escapeRegExp = (c: string): string => (/[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c)
