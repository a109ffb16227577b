/**
 * Postgres change values without Effect: the change shapes, column value conversion (as
 * realtime-js's, exact for `int8` / `numeric` by default), the shape check of `payload.data`, the
 * conversion to generated types, and JSON parsing that keeps numbers a double cannot hold.
 */
import * as Describe from "../describe.js"
import { isRecord } from "../guards.js"
import type * as Model from "../protocol/model.js"
import * as Result from "../result.js"
import * as Filter from "./filter.js"

/**
 * A column of a change (`type` is the Postgres type name: `int8`, `text`, `_int4`, ...).
 */
export interface Column {
  readonly name: string
  readonly type: string
}

/**
 * A row as received (after conversion unless noted).
 */
export type Row = { readonly [column: string]: unknown }

/**
 * The `new` of a DELETE and the `old` of an INSERT.
 */
export type EmptyRow = { readonly [column: string]: never }

/**
 * `payload.data` of a `postgres_changes` message.
 */
export interface RawChange {
  readonly schema: string
  readonly table: string
  readonly commit_timestamp: string
  readonly type: "INSERT" | "UPDATE" | "DELETE"
  readonly columns: ReadonlyArray<Column>
  readonly record?: Row | null | undefined
  readonly old_record?: Row | null | undefined
  readonly errors: ReadonlyArray<string> | null
}

/** The fields every change has. */
export interface ChangeBase {
  readonly schema: string
  readonly table: string
  readonly commit_timestamp: string
  /** Server errors, e.g. `Error 401: Unauthorized`, `Error 413: Payload Too Large`; `null` if none. */
  readonly errors: ReadonlyArray<string> | null
}

/** An INSERT: `new`, and `old = {}`. */
export interface InsertChange<A = Row> extends ChangeBase {
  readonly eventType: "INSERT"
  readonly new: A
  readonly old: EmptyRow
}

/**
 * `old` holds the primary key only, unless the table has `REPLICA IDENTITY FULL`.
 */
export interface UpdateChange<A = Row> extends ChangeBase {
  readonly eventType: "UPDATE"
  readonly new: A
  readonly old: Partial<A>
}

/**
 * `old` holds the primary key only, unless the table has `REPLICA IDENTITY FULL`.
 */
export interface DeleteChange<A = Row> extends ChangeBase {
  readonly eventType: "DELETE"
  readonly new: EmptyRow
  readonly old: Partial<A>
}

/**
 * A change, in realtime-js's shape (`eventType`, `new`, `old`, ...).
 */
export type Change<A = Row> = InsertChange<A> | UpdateChange<A> | DeleteChange<A>

/**
 * How column values are converted.
 *
 * - `int8` — `int8` (and `_int8` elements): `"string"` (default: exact and JSON-friendly),
 *   `"bigint"` (exact, a JS `bigint`), or `"number"` (realtime-js's `parseFloat`, loses precision
 *   beyond 2^53).
 * - `numeric` — `numeric`: `"string"` (default, exact decimal text) or `"number"` (realtime-js).
 * - `skipTypes` — column types left as received (as realtime-js's `skipTypes`).
 *
 * The modern server sends typed JSON, so an `int8` beyond 2^53 may arrive as a JSON number that
 * `JSON.parse` has already rounded: only the frame text holds the exact value. Decode such frames
 * with {@link parseJsonPreservingPrecision} to keep it (the value then arrives as a string).
 * Default `"string"` because it is exact and survives `JSON.stringify` (a `bigint` does not).
 */
export interface ConvertOptions {
  readonly int8?: "string" | "bigint" | "number" | undefined
  readonly numeric?: "string" | "number" | undefined
  readonly skipTypes?: ReadonlyArray<string> | undefined
}

const integerText = /^\s*[+-]?\d+\s*$/

/**
 * Converts one value by its column type, as realtime-js's `convertCell`: `bool` `t`/`f` → boolean;
 * `float4`, `float8`, `int2`, `int4`, `oid` → number (`parseFloat`); `json`/`jsonb` strings
 * parsed; `timestamp` gets a `T` instead of its first space; `_type` arrays parsed (a Postgres array
 * literal, elements converted by the element type); other types and non-string values unchanged.
 * Except `int8` and `numeric`, which follow {@link ConvertOptions} and never lose precision by
 * default.
 */
export const convertCell = (type: string, value: unknown, options?: ConvertOptions): unknown => {
  if (type.startsWith("_")) return convertArray(type.slice(1), value, options)
  switch (type) {
    case "bool":
      return value === "t" ? true : value === "f" ? false : value
    case "float4":
    case "float8":
    case "int2":
    case "int4":
    case "oid":
      return toNumber(value)
    case "int8":
      return convertInt8(value, options?.int8 ?? "string")
    case "numeric":
      return convertNumeric(value, options?.numeric ?? "string")
    case "json":
    case "jsonb":
      if (typeof value !== "string") return value
      try {
        return JSON.parse(value)
      } catch {
        return value
      }
    case "timestamp":
      return typeof value === "string" ? value.replace(" ", "T") : value
    default:
      return value
  }
}

const toNumber = (value: unknown): unknown => {
  if (typeof value !== "string") return value
  const n = parseFloat(value)
  return Number.isNaN(n) ? value : n
}

const convertInt8 = (value: unknown, mode: "string" | "bigint" | "number"): unknown => {
  switch (mode) {
    case "number":
      return typeof value === "bigint" ? Number(value) : toNumber(value)
    case "string":
      if (typeof value === "string") return value.trim()
      // a number arrives already parsed: exact up to 2^53 (and for any integer with at most 15
      // significant digits, which `String` prints back as written)
      return typeof value === "number" || typeof value === "bigint" ? String(value) : value
    case "bigint":
      if (typeof value === "string") return integerText.test(value) ? BigInt(value.trim()) : value
      if (typeof value === "number" && Number.isInteger(value)) {
        const text = String(value)
        return integerText.test(text) ? BigInt(text) : BigInt(value)
      }
      return value
  }
}

const convertNumeric = (value: unknown, mode: "string" | "number"): unknown => {
  if (mode === "number") return typeof value === "bigint" ? Number(value) : toNumber(value)
  return typeof value === "number" || typeof value === "bigint" ? String(value) : value
}

const convertArray = (elementType: string, value: unknown, options: ConvertOptions | undefined): unknown => {
  const convert = (e: unknown) => convertCell(elementType, e, options)
  if (Array.isArray(value)) return convertElements(value, convert)
  if (typeof value !== "string") return value
  const trimmed = value.trim()
  if (!trimmed.startsWith("{") || !trimmed.endsWith("}")) return value
  const parsed = Filter.parseArrayLiteral(trimmed)
  return parsed === undefined ? value : convertElements(parsed, convert)
}

// A copy of nested arrays with `f` applied to every element that is neither an array nor null.
// Iterative (a stack of the arrays still to copy): the nesting comes from the wire.
const convertElements = (root: ReadonlyArray<unknown>, f: (element: unknown) => unknown): Array<unknown> => {
  const out: Array<unknown> = new Array(root.length)
  const stack: Array<readonly [ReadonlyArray<unknown>, Array<unknown>]> = [[root, out]]
  while (stack.length > 0) {
    const [from, to] = stack.pop()!
    for (let i = 0; i < from.length; i++) {
      const e = from[i]
      if (Array.isArray(e)) {
        const copy: Array<unknown> = new Array(e.length)
        to[i] = copy
        stack.push([e, copy])
      } else {
        to[i] = e === null ? null : f(e)
      }
    }
  }
  return out
}

/**
 * Converts every field of a row by its column's type (as realtime-js's `convertChangeData`):
 * fields without a column, or whose type is in `skipTypes`, are left as they are.
 */
export const convertRow = (
  columns: ReadonlyArray<Column>,
  row: Row | null | undefined,
  options?: ConvertOptions
): Row => {
  if (row === null || row === undefined) return {}
  const types = new Map(columns.map((c) => [c.name, c.type]))
  const skip = options?.skipTypes ?? []
  return Object.fromEntries(
    Object.keys(row).map((name) => {
      const type = types.get(name)
      const value = row[name]
      return [name, type === undefined || skip.includes(type) ? value : convertCell(type, value, options)]
    })
  )
}

/**
 * Turns a well-formed `payload.data` into a {@link Change}: INSERT has `new` (and `old = {}`),
 * UPDATE both, DELETE `old` (and `new = {}`), values converted per {@link ConvertOptions}.
 */
export const convertRawChange = (data: RawChange, options?: ConvertOptions): Change => {
  const base = {
    schema: data.schema,
    table: data.table,
    commit_timestamp: data.commit_timestamp,
    errors: data.errors ?? null
  }
  const columns = data.columns ?? []
  switch (data.type) {
    case "INSERT":
      return { ...base, eventType: "INSERT", new: convertRow(columns, data.record, options), old: {} }
    case "UPDATE":
      return {
        ...base,
        eventType: "UPDATE",
        new: convertRow(columns, data.record, options),
        old: convertRow(columns, data.old_record, options)
      }
    case "DELETE":
      return { ...base, eventType: "DELETE", new: {}, old: convertRow(columns, data.old_record, options) }
  }
}

/**
 * Turns `payload.data` of a `postgres_changes` message into a {@link Change} (see
 * {@link convertRawChange}), after checking its shape: it comes from the wire, so a malformed one is
 * an error (its detail, for a protocol error of reason `UnsupportedPayload`), not a crash. Extra keys (such as `type_modifier` in columns) are tolerated and
 * `type` is case-insensitive.
 */
export const convertChange = (data: unknown, options?: ConvertOptions): Result.Result<Change, string> => {
  const fail = (detail: string) => Result.err(`postgres_changes: ${detail}`)
  if (!isRecord(data)) return fail("data is not an object")
  const type = typeof data["type"] === "string" ? data["type"].toUpperCase() : undefined
  if (type !== "INSERT" && type !== "UPDATE" && type !== "DELETE") {
    return fail(`unknown change type ${describe(data["type"])}`)
  }
  for (const field of ["schema", "table"] as const) {
    if (typeof data[field] !== "string") return fail(`\`${field}\` is not a string`)
  }
  const columns = data["columns"] ?? []
  if (
    !Array.isArray(columns) ||
    !columns.every((c) =>
      ((typeof c === "object" && c !== null) || typeof c === "function") && "name" in c && typeof c.name === "string"
    )
  ) {
    return fail("`columns` is not a list of {name, type}")
  }
  for (const field of ["record", "old_record"] as const) {
    const row = data[field]
    if (row !== undefined && row !== null && !isRecord(row)) return fail(`\`${field}\` is not an object`)
  }
  const errors = data["errors"]
  if (errors !== undefined && errors !== null && !Array.isArray(errors)) return fail("`errors` is not a list")
  return Result.ok(convertRawChange({
    schema: data["schema"] as string,
    table: data["table"] as string,
    commit_timestamp: typeof data["commit_timestamp"] === "string" ? data["commit_timestamp"] : "",
    type,
    columns: (columns as ReadonlyArray<{ readonly name: string; readonly type?: unknown }>).map((c) => ({
      name: c.name,
      type: typeof c.type === "string" ? c.type : ""
    })),
    record: data["record"] as Row | null | undefined,
    old_record: data["old_record"] as Row | null | undefined,
    errors: Array.isArray(errors) ? errors.map((e) => typeof e === "string" ? e : describe(e)) : null
  }, options))
}

/**
 * A change converted exactly (`int8` and `numeric` as strings) made to follow generated types:
 * `int8` / `numeric` values (and their arrays' elements) become numbers when a number holds them
 * exactly, else the change is refused with a reason.
 */
export const toGeneratedTypes = (data: unknown, change: Change): Result.Result<Change, string> => {
  const columns = isRecord(data) && Array.isArray(data["columns"]) ? data["columns"] : []
  const numeric = new Map<string, string>()
  for (const c of columns) {
    if (!isRecord(c) || typeof c["name"] !== "string" || typeof c["type"] !== "string") continue
    const type = c["type"].startsWith("_") ? c["type"].slice(1) : c["type"]
    if (type === "int8" || type === "numeric") numeric.set(c["name"], type)
  }
  if (numeric.size === 0) return Result.ok(change)
  let refused: string | undefined
  const convert = (row: Row): Row => {
    let out: Record<string, unknown> | undefined
    for (const [name, type] of numeric) {
      if (!(name in row)) continue
      const value = row[name]
      const toNumber = (e: unknown): unknown => {
        if (typeof e !== "string" || refused !== undefined) return e
        const n = exactNumber(e, type)
        if (n === undefined) {
          refused = `column ${name} (${type}) holds ${
            Describe.truncate(e, 60)
          }, which a number cannot hold exactly; the generated types say number: give a Schema with a string or bigint field`
          return e
        }
        return n
      }
      ;(out ??= { ...row })[name] = Array.isArray(value) ? convertElements(value, toNumber) : toNumber(value)
    }
    return out ?? row
  }
  const converted = { ...change, new: convert(change.new), old: convert(change.old) } as Change
  return refused === undefined ? Result.ok(converted) : Result.err(refused)
}

// The number a decimal text stands for, when a double holds it exactly (an integer within 2^53, a
// decimal whose double prints back to the same value); undefined else, never a rounded number.
const exactNumber = (text: string, type: string): number | undefined => {
  const trimmed = text.trim()
  if (type === "numeric" && /^[+-]?(NaN|Infinity)$/.test(trimmed)) return Number(trimmed)
  if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(trimmed)) return undefined
  const n = Number(trimmed)
  if (type === "int8") return Number.isSafeInteger(n) ? n : undefined
  return Filter.isExactNumber(trimmed) ? n : undefined
}

/**
 * `JSON.parse`, except that a number a double cannot hold exactly (an `int8` beyond 2^53, a
 * `numeric` with many digits) is kept as its decimal text, a string. Use it on the text of
 * `postgres_changes` frames so {@link convertChange} sees exact `int8` / `numeric` values. Numbers
 * that round-trip (all the usual ones) stay numbers.
 */
export const parseJsonPreservingPrecision = (text: string): unknown => {
  let out = ""
  let last = 0
  let changed = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (c === "\"") {
      // skip the string
      for (i++; i < text.length && text[i] !== "\""; i++) {
        if (text[i] === "\\") i++
      }
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      let j = i + 1
      while (j < text.length && /[0-9eE.+-]/.test(text[j]!)) j++
      const token = text.slice(i, j)
      if (!Filter.isExactNumber(token)) {
        out += text.slice(last, i) + "\"" + token + "\""
        last = j
        changed = true
      }
      i = j - 1
    }
  }
  return JSON.parse(changed ? out + text.slice(last) : text)
}

// bounded and depth-safe: replies and changes come from the wire
const describe = (u: unknown): string => Describe.describe(u, { maxLength: 300 })

// 16 digits in a row: the shortest run that may not survive a double (2^53 has 16 digits)
const longDigits = /\d{16}/

/**
 * Keeps `int8` / `numeric` values of Postgres changes exact: Realtime sends them as JSON numbers,
 * which `JSON.parse` rounds past 2^53 before any column conversion could see them. For a decoded
 * `postgres_changes` text frame that holds a long run of digits, the payload read again with
 * `parseJsonPreservingPrecision` (inexact numbers become their decimal text); `undefined` for every
 * other frame (which costs one comparison) or when the frame cannot be read again.
 */
export const exactPayload = (frame: Model.Frame, message: Model.Message): unknown => {
  if (message.event !== "postgres_changes" || typeof frame !== "string" || !longDigits.test(frame)) return undefined
  let exact: unknown
  try {
    exact = parseJsonPreservingPrecision(frame)
  } catch {
    return undefined
  }
  return Array.isArray(exact)
    ? exact[4]
    : typeof exact === "object" && exact !== null
    ? (exact as { readonly payload?: unknown }).payload
    : undefined
}
