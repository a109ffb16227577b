/**
 * The Postgres-changes filter grammar as the Realtime server parses it
 * (`lib/extensions/postgres_cdc_rls/subscriptions.ex`), with its exact error strings, exact decimal
 * comparison and Postgres array literals: what the client needs (the filter builder, exact numbers,
 * array columns). The server side (subscription params, binding ids, evaluating filters on rows)
 * lives with the in-process server's engine. Also the serialization of the filter builder's
 * conditions (byte-for-byte realtime-js's `postgresChangesFilter()`).
 */
import * as Result from "../result.js"

/** A filter operator (`not.` negates any). */
export type Operator =
  | "eq"
  | "neq"
  | "lt"
  | "lte"
  | "gt"
  | "gte"
  | "in"
  | "like"
  | "ilike"
  | "is"
  | "match"
  | "imatch"
  | "isdistinct"

/** Every operator of the grammar. */
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
 */
export interface Condition {
  readonly column: string
  readonly operator: Operator
  readonly value: string
  readonly negate: boolean
}

/**
 * The segments of a filter, ANDed. Empty = no filter.
 */
export type ParsedFilter = ReadonlyArray<Condition>

/** The prefix of the server's filter errors. */
export const filterErrorPrefix = "Error parsing `filter` params: "

// -----------------------------------------------------------------------------
// filter grammar
// -----------------------------------------------------------------------------

/**
 * Parses a filter string like the server. The error is the full message the server pushes in its
 * `system` `postgres_changes` error (``Error parsing `filter` params: <detail>``), e.g.
 * ``Error parsing `filter` params: ["foo", "hey"]`` or
 * ``Error parsing `filter` params: `in` filter value must be wrapped by parentheses``.
 */
export const parseFilter = (filter: string): Result.Result<ParsedFilter, string> => {
  const trimmed = filter.trim()
  if (trimmed === "") return Result.ok([])
  const out: Array<Condition> = []
  for (const segment of splitTopLevel(trimmed)) {
    const parsed = parseSegment(segment)
    if (typeof parsed === "string") return Result.err(filterErrorPrefix + parsed)
    out.push(parsed)
  }
  return Result.ok(out)
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
// exact numeric comparison
// -----------------------------------------------------------------------------

/** Code unit order. */
export const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** A decimal number as sign, significant digits and point position (exact, any size). */
export interface Decimal {
  readonly special?: "nan" | "inf" | "-inf"
  readonly negative: boolean
  /** significant digits without leading or trailing zeros ("" for zero) */
  readonly digits: string
  /** position of the decimal point relative to the start of `digits` */
  readonly point: number
}

const decimalPattern = /^\s*([+-])?(?:(\d+)(?:\.(\d*))?|\.(\d+))(?:[eE]([+-]?\d+))?\s*$/

/** A decimal text as a {@link Decimal}, or `undefined` when it is not one. */
export const parseDecimal = (text: string): Decimal | undefined => {
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

/** Postgres numeric order: NaN is equal to itself and above everything, then +Infinity. */
export const compareNumeric = (a: string, b: string): number | null => {
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
 */
export type PgArray = ReadonlyArray<string | null | PgArray>

/**
 * Parses a Postgres array literal (`{a,"b,c",NULL,{1,2}}`): elements are separated by commas,
 * double-quoted elements take backslash escapes, unquoted elements are trimmed and `NULL` (any
 * case) is null. `undefined` when the text is not an array literal.
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

// -----------------------------------------------------------------------------
// builder conditions
// -----------------------------------------------------------------------------

const reserved = /[,()"\\]/

const quote = (value: string): string => `"${value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"")}"`

const quoteIfNeeded = (value: string): string => (reserved.test(value) || value !== value.trim() ? quote(value) : value)

const scalar = (value: unknown): string => quoteIfNeeded(value === null ? "null" : String(value))

// The server turns `in.(...)` into a Postgres array literal, where a bare empty element is malformed,
// a bare `NULL` is NULL and braces nest: those elements are quoted too (realtime-js sends them bare).
const inElement = (value: unknown): string => {
  const text = String(value)
  return text === "" || text.trim().toUpperCase() === "NULL" || /[{}]/.test(text) ? quote(text) : scalar(value)
}

// the Realtime SDK spec's limit on the values of one `in` filter
const MAX_IN_VALUES = 100

const isValues: ReadonlyArray<unknown> = [null, true, false, "null", "true", "false", "unknown"]

/**
 * One builder condition, `column=[not.]op.value`, serialized as realtime-js does (values holding
 * `,` `(` `)` `"` `\` or surrounding whitespace double-quoted; `in` without duplicates, its empty,
 * `NULL` or braced elements quoted too), with the problems that make it invalid (empty when valid).
 */
export const condition = (
  column: string,
  operator: Operator,
  value: unknown,
  negate: boolean
): { readonly condition: string; readonly problems: ReadonlyArray<string> } => {
  const problems: Array<string> = []
  if (typeof column !== "string" || column === "" || /[=,()"]/.test(column)) {
    problems.push(`invalid filter column ${JSON.stringify(column)}: must be non-empty without = , ( ) "`)
  }
  let serialized: string
  if (operator === "in") {
    const values = Array.from(new Set(Array.isArray(value) ? value : [value]))
    if (values.length === 0) problems.push(`\`in\` filter on ${JSON.stringify(column)} requires at least one value`)
    if (values.length > MAX_IN_VALUES) {
      problems.push(
        `\`in\` filter on ${JSON.stringify(column)} takes at most ${MAX_IN_VALUES} values, got ${values.length}`
      )
    }
    serialized = `in.(${values.map(inElement).join(",")})`
  } else if (operator === "is") {
    if (!isValues.includes(value)) {
      problems.push(`\`is\` filter on ${JSON.stringify(column)} takes null, true, false or "unknown"`)
    }
    serialized = `is.${value === null ? "null" : String(value)}`
  } else {
    if (!operators.includes(operator)) problems.push(`unknown filter operator ${JSON.stringify(operator)}`)
    serialized = `${operator}.${scalar(value)}`
  }
  return { condition: `${column}=${negate ? "not." : ""}${serialized}`, problems }
}
