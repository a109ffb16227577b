/**
 * Server side of Postgres changes subscriptions, as the Realtime server implements them
 * (`lib/extensions/postgres_cdc_rls/subscriptions.ex` `parse_subscription_params/1`): the filter
 * grammar with its exact error strings, subscription params, binding ids, and an evaluator with
 * Postgres-like semantics. Used by the client (binding ids, array literals) and by the in-process
 * fake server in `./testing`.
 *
 * @internal
 */
import * as Either from "effect/Either"
import type { FilterOperator } from "../PostgresChanges.js"

/** @internal */
export type Operator = FilterOperator

/** @internal */
export const operators: ReadonlyArray<Operator> = [
  "eq",
  "neq",
  "lt",
  "lte",
  "gt",
  "gte",
  "in",
  "like",
  "ilike",
  "is",
  "match",
  "imatch",
  "isdistinct"
]

const operatorSet: ReadonlySet<string> = new Set(operators)

/**
 * One `column=[not.]op.value` segment as the server stores it: `value` is unquoted for scalar
 * operators, and for `in` it is the Postgres array literal the server builds (`in.(a,b)` →
 * `{a,b}`).
 *
 * @internal
 */
export interface Condition {
  readonly column: string
  readonly operator: Operator
  readonly value: string
  readonly negate: boolean
}

/**
 * The segments of a filter, ANDed. Empty = no filter.
 *
 * @internal
 */
export type ParsedFilter = ReadonlyArray<Condition>

/** @internal */
export const filterErrorPrefix = "Error parsing `filter` params: "

// -----------------------------------------------------------------------------
// filter grammar
// -----------------------------------------------------------------------------

/**
 * Parses a filter string like the server. The error is the full message the server pushes in its
 * `system` `postgres_changes` error (``Error parsing `filter` params: <detail>``), e.g.
 * ``Error parsing `filter` params: ["foo", "hey"]`` or
 * ``Error parsing `filter` params: `in` filter value must be wrapped by parentheses``.
 *
 * @internal
 */
export const parseFilter = (filter: string): Either.Either<ParsedFilter, string> => {
  const trimmed = filter.trim()
  if (trimmed === "") return Either.right([])
  const out: Array<Condition> = []
  for (const segment of splitTopLevel(trimmed)) {
    const parsed = parseSegment(segment)
    if (typeof parsed === "string") return Either.left(filterErrorPrefix + parsed)
    out.push(parsed)
  }
  return Either.right(out)
}

// Splits on commas outside parentheses and double quotes. A quote opens only right after `.`, `(`
// or `,` (inside parentheses); inside quotes a backslash takes the next character with it.
const splitTopLevel = (filter: string): Array<string> => {
  const parts: Array<string> = []
  let current = ""
  let depth = 0
  let quoted = false
  let prev = ""
  for (let i = 0; i < filter.length; i++) {
    const c = filter[i]!
    if (quoted) {
      if (c === "\\" && i + 1 < filter.length) {
        current += c + filter[i + 1]!
        prev = filter[++i]!
      } else {
        current += c
        prev = c
        if (c === "\"") quoted = false
      }
    } else if (c === "\"" && (prev === "." || prev === "(" || prev === ",")) {
      quoted = true
      current += c
      prev = c
    } else if (c === "(") {
      depth++
      current += c
      prev = c
    } else if (c === ")") {
      depth = Math.max(0, depth - 1)
      current += c
      prev = c
    } else if (c === "," && depth === 0) {
      parts.push(current)
      current = ""
      prev = ""
    } else {
      current += c
      prev = c
    }
  }
  parts.push(current)
  return parts
}

const parseSegment = (segment: string): Condition | string => {
  const trimmed = segment.trim()
  if (trimmed === "") return "filter must not contain empty segments (check for extra commas)"
  const eq = trimmed.indexOf("=")
  if (eq < 0) return inspect([trimmed])
  const column = trimmed.slice(0, eq)
  const rest = trimmed.slice(eq + 1)
  const negate = rest.startsWith("not.")
  const opValue = negate ? rest.slice(4) : rest
  const dot = opValue.indexOf(".")
  if (dot < 0) return inspect([opValue])
  const operator = opValue.slice(0, dot)
  const value = opValue.slice(dot + 1)
  if (!operatorSet.has(operator)) return inspect([operator, value])
  if (operator === "in") {
    if (value.length < 2 || !value.startsWith("(") || !value.endsWith(")")) {
      return "`in` filter value must be wrapped by parentheses"
    }
    return { column, operator, value: `{${value.slice(1, -1)}}`, negate }
  }
  return { column, operator: operator as Operator, value: unquote(value), negate }
}

// `"..."` with backslash escapes, closed exactly at the end; anything else is kept as is.
const unquote = (value: string): string => {
  if (!value.startsWith("\"")) return value
  let out = ""
  for (let i = 1; i < value.length; i++) {
    const c = value[i]!
    if (c === "\"") return i === value.length - 1 ? out : value
    if (c === "\\" && i + 1 < value.length) {
      out += value[++i]!
    } else {
      out += c
    }
  }
  return value
}

// -----------------------------------------------------------------------------
// subscription params
// -----------------------------------------------------------------------------

/**
 * A postgres_changes binding as the server understands it.
 *
 * @internal
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
 *
 * @internal
 */
export const parseSubscriptionParams = (params: unknown): Either.Either<SubscriptionParams, string> => {
  const map: Record<string, unknown> = isPlainObject(params) ? params : {}
  const has = (key: string) => Object.prototype.hasOwnProperty.call(map, key)
  const event = actionFilter(map)

  let select: ReadonlyArray<string> | null = null
  if (has("select")) {
    const raw = map["select"]
    if (Array.isArray(raw)) {
      const valid = raw.filter((c): c is string => typeof c === "string")
      select = valid.length === 0 ? null : valid
    } else if (typeof raw === "string") {
      return Either.left(
        "Error parsing `select` params: expected a list of column name strings, e.g. select: [\"col1\", \"col2\"]"
      )
    }
  }

  const ok = (schema: string, table: string, filter: ParsedFilter): Either.Either<SubscriptionParams, string> =>
    select !== null && (schema === "*" || table === "*")
      ? Either.left(
        "Column selection is not supported for wildcard subscriptions. Provide an explicit schema and table name."
      )
      : Either.right({ event, schema, table, filter, select })

  const schema = map["schema"]
  const table = map["table"]
  const filter = map["filter"]
  if (typeof schema === "string" && typeof table === "string" && typeof filter === "string") {
    return Either.flatMap(parseFilter(filter), (parsed) => ok(schema, table, parsed))
  }
  if (typeof schema === "string" && typeof table === "string" && !has("filter")) return ok(schema, table, [])
  if (typeof schema === "string" && !has("table") && !has("filter")) return ok(schema, "*", [])
  if (typeof table === "string" && !has("schema") && !has("filter")) return ok("public", table, [])
  const prefix = "No subscription params provided. Please provide at least a `schema` or `table` to subscribe to: "
  if (has("user_token") || has("auth_token")) return Either.left(prefix + "<redacted>")
  return Either.left(prefix + inspect(isPlainObject(params) ? params : params ?? null))
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
 *
 * @internal
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

/** @internal */
export interface Column {
  readonly name: string
  readonly type: string
}

/**
 * The parts of a change the server matches bindings on.
 *
 * @internal
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
 *
 * @internal
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
 *
 * @internal
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
 *
 * @internal
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

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

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

// -----------------------------------------------------------------------------
// exact numeric comparison
// -----------------------------------------------------------------------------

interface Decimal {
  readonly special?: "nan" | "inf" | "-inf"
  readonly negative: boolean
  /** significant digits without leading or trailing zeros ("" for zero) */
  readonly digits: string
  /** position of the decimal point relative to the start of `digits` */
  readonly point: number
}

const decimalPattern = /^\s*([+-])?(?:(\d+)(?:\.(\d*))?|\.(\d+))(?:[eE]([+-]?\d+))?\s*$/

const parseDecimal = (text: string): Decimal | undefined => {
  const lower = text.trim().toLowerCase()
  if (lower === "nan") return { special: "nan", negative: false, digits: "", point: 0 }
  if (lower === "infinity" || lower === "+infinity" || lower === "inf") {
    return { special: "inf", negative: false, digits: "", point: 0 }
  }
  if (lower === "-infinity" || lower === "-inf") return { special: "-inf", negative: true, digits: "", point: 0 }
  const m = decimalPattern.exec(text)
  if (m === null) return undefined
  const int = m[2] ?? ""
  const frac = m[3] ?? m[4] ?? ""
  const exp = m[5] === undefined ? 0 : Number(m[5])
  let digits = int + frac
  let point = int.length + exp
  const lead = digits.length - digits.replace(/^0+/, "").length
  digits = digits.slice(lead)
  point -= lead
  digits = digits.replace(/0+$/, "")
  if (digits === "") return { negative: false, digits: "", point: 0 }
  return { negative: m[1] === "-", digits, point }
}

// Postgres numeric order: NaN is equal to itself and above everything, then +Infinity.
const compareNumeric = (a: string, b: string): number | null => {
  const x = parseDecimal(a)
  const y = parseDecimal(b)
  if (x === undefined || y === undefined) return null
  const rank = (d: Decimal) => (d.special === "nan" ? 3 : d.special === "inf" ? 2 : d.special === "-inf" ? 0 : 1)
  if (rank(x) !== rank(y) || rank(x) !== 1) return Math.sign(rank(x) - rank(y))
  const sign = (d: Decimal) => (d.digits === "" ? 0 : d.negative ? -1 : 1)
  if (sign(x) !== sign(y)) return Math.sign(sign(x) - sign(y))
  if (sign(x) === 0) return 0
  const magnitude = x.point !== y.point
    ? Math.sign(x.point - y.point)
    : compareText(x.digits.padEnd(y.digits.length, "0"), y.digits.padEnd(x.digits.length, "0"))
  return sign(x) * magnitude
}

/**
 * Whether a JSON number token survives `JSON.parse` exactly (its double prints back to the same
 * decimal value).
 *
 * @internal
 */
export const isExactNumber = (token: string): boolean => {
  const n = Number(token)
  return Number.isFinite(n) && compareNumeric(token, String(n)) === 0
}

// -----------------------------------------------------------------------------
// Postgres array literals
// -----------------------------------------------------------------------------

/**
 * A Postgres array literal's elements: strings, `null` for an unquoted `NULL`, nested arrays.
 *
 * @internal
 */
export type PgArray = ReadonlyArray<string | null | PgArray>

/**
 * Parses a Postgres array literal (`{a,"b,c",NULL,{1,2}}`): elements are separated by commas,
 * double-quoted elements take backslash escapes, unquoted elements are trimmed and `NULL` (any
 * case) is null. `undefined` when the text is not an array literal.
 *
 * @internal
 */
export const parseArrayLiteral = (text: string): PgArray | undefined => {
  // iterative (a stack of the open arrays): the literal may come from the wire, nested at will
  const s = text.trim()
  if (s[0] !== "{") return undefined
  let i = 1
  const skipSpace = () => {
    while (i < s.length && /\s/.test(s[i]!)) i++
  }
  const root: Array<string | null | PgArray> = []
  const open: Array<Array<string | null | PgArray>> = [root]
  // expecting an element (after `{` or `,`); `opened`: right after `{`, where `}` closes it empty
  let expecting = true
  let opened = true
  while (open.length > 0) {
    skipSpace()
    if (expecting && !(opened && s[i] === "}")) {
      const out = open[open.length - 1]!
      opened = false
      expecting = false
      if (s[i] === "{") {
        i++
        const nested: Array<string | null | PgArray> = []
        out.push(nested)
        open.push(nested)
        expecting = true
        opened = true
      } else if (s[i] === "\"") {
        i++
        let value = ""
        for (;;) {
          if (i >= s.length) return undefined
          const c = s[i++]!
          if (c === "\"") break
          if (c === "\\") {
            if (i >= s.length) return undefined
            value += s[i++]!
          } else {
            value += c
          }
        }
        out.push(value)
      } else {
        let value = ""
        let escaped = false
        while (i < s.length && s[i] !== "," && s[i] !== "}") {
          const c = s[i++]!
          if (c === "{" || c === "\"") return undefined
          if (c === "\\") {
            if (i >= s.length) return undefined
            value += s[i++]!
            escaped = true
          } else {
            value += c
          }
        }
        const trimmed = escaped ? value : value.trim()
        if (trimmed === "") return undefined
        out.push(!escaped && trimmed.toUpperCase() === "NULL" ? null : trimmed)
      }
      continue
    }
    // after an element, or at the `}` of an empty array
    if (s[i] === "," && !opened) {
      i++
      expecting = true
      continue
    }
    if (s[i] === "}") {
      i++
      open.pop()
      expecting = false
      opened = false
      continue
    }
    return undefined
  }
  return i === s.length ? root : undefined
}

// -----------------------------------------------------------------------------
// Elixir `inspect`, for the server's error strings
// -----------------------------------------------------------------------------

/**
 * Renders a JSON value as Elixir's `inspect/1` would after Jason decoded it: strings quoted and
 * escaped (or as a `<<bytes>>` binary when not printable), `nil`, lists, maps with sorted keys.
 *
 * @internal
 */
export const inspect = (u: unknown): string => {
  if (u === null || u === undefined) return "nil"
  if (typeof u === "string") return inspectString(u)
  if (typeof u === "boolean") return String(u)
  if (typeof u === "number") return Number.isInteger(u) ? String(u) : String(u).replace(/e([+-])/, ".0e$1")
  if (typeof u === "bigint") return u.toString()
  if (Array.isArray(u)) return `[${u.map(inspect).join(", ")}]`
  if (typeof u === "object") {
    const keys = Object.keys(u).sort(compareUtf8)
    return `%{${keys.map((k) => `${inspectString(k)} => ${inspect((u as Record<string, unknown>)[k])}`).join(", ")}}`
  }
  return String(u)
}

const escapes: Record<string, string> = {
  "\"": "\\\"",
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\v": "\\v",
  "\b": "\\b",
  "\f": "\\f",
  "\u001b": "\\e",
  "\u007f": "\\d",
  "\u0007": "\\a"
}

const isPrintable = (cp: number): boolean =>
  (cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) ||
  (cp >= 0x10000 && cp <= 0x10ffff) || [7, 8, 9, 10, 11, 12, 13, 27, 127].includes(cp)

const inspectString = (s: string): string => {
  const cps = Array.from(s, (c) => c.codePointAt(0)!)
  if (!cps.every(isPrintable)) return `<<${Array.from(new TextEncoder().encode(s)).join(", ")}>>`
  let out = ""
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!
    if (c === "#" && s[i + 1] === "{") out += "\\#"
    else out += escapes[c] ?? c
  }
  return `"${out}"`
}

const compareUtf8 = (a: string, b: string): number => {
  const x = new TextEncoder().encode(a)
  const y = new TextEncoder().encode(b)
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!
  }
  return x.length - y.length
}

const isPlainObject = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)
