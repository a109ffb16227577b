/**
 * Postgres changes: bindings, the filter builder, matching the server's binding ids, and turning a
 * change payload into a typed event with exact `int8` / `numeric` values.
 *
 * Where this differs from realtime-js (on purpose):
 * - Server ids are matched to bindings by content (event, schema, table, filter, select), not by
 *   position, so a reordered reply still works and a mismatch names the binding.
 * - `int8` and `numeric` columns never go through `parseFloat`: they are strings by default (or
 *   `bigint` for `int8`), see {@link ConvertOptions}.
 * - The filter builder never throws: invalid input (an empty `in`, a bad column name) makes
 *   `build()` fail with `InvalidArgument`.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import * as Predicate from "effect/Predicate"
import * as Describe from "./core/describe.js"
import { isRecord } from "./core/guards.js"
import * as internal from "./internal/postgresFilter.js"
import { InvalidArgument, PostgresBindingMismatch, ProtocolError } from "./RealtimeError.js"

// -----------------------------------------------------------------------------
// bindings
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export type Event = "INSERT" | "UPDATE" | "DELETE" | "*"

/**
 * What to listen to: an event (`*` for all) on a schema (`*` for all), optionally one table (absent
 * or `*` for all), a filter (`col=op.value`, ANDed by commas; a string or a {@link FilterBuilder}),
 * and a column projection (`select`, needs an explicit schema and table).
 *
 * @since 0.1.0
 * @category models
 */
export interface Binding {
  readonly event: Event
  readonly schema: string
  readonly table?: string | undefined
  readonly filter?: string | FilterBuilder | undefined
  readonly select?: ReadonlyArray<string> | undefined
}

// -----------------------------------------------------------------------------
// bindings typed by a generated `Database` type
// -----------------------------------------------------------------------------

/**
 * Marks a binding made by {@link typed} with the row type of its table.
 *
 * @since 0.1.0
 * @category type ids
 */
export const RowTypeId: unique symbol = Symbol.for("supabase-realtime-effect/PostgresChanges/RowType")

/**
 * @since 0.1.0
 * @category type ids
 */
export type RowTypeId = typeof RowTypeId

/**
 * The schemas of a `Database` type as `supabase gen types typescript` writes it (the keys with
 * `Tables`; `__InternalSupabase` and the like are left out).
 *
 * @since 0.1.0
 * @category models
 */
export type SchemaName<Database> = {
  readonly [S in keyof Database & string]: Database[S] extends { readonly Tables: object } ? S : never
}[keyof Database & string]

/**
 * The tables of schema `S` of a generated `Database` type.
 *
 * @since 0.1.0
 * @category models
 */
export type TableName<Database, S extends SchemaName<Database>> = Database[S] extends
  { readonly Tables: infer Tables } ? keyof Tables & string
  : never

/**
 * The `Row` type of table `T` of schema `S` of a generated `Database` type.
 *
 * @since 0.1.0
 * @category models
 */
export type TableRow<Database, S extends SchemaName<Database>, T extends TableName<Database, S>> = Database[S] extends
  { readonly Tables: infer Tables } ? T extends keyof Tables ? Tables[T] extends { readonly Row: infer R } ? R : never
  : never
  : never

/**
 * A binding that knows the row type of its table (from {@link typed}): the channel's
 * `postgresChanges(binding)` streams `Change<A>` without a Schema. It is a plain {@link Binding}
 * everywhere else (in the channel config, on the wire).
 *
 * @since 0.1.0
 * @category models
 */
export interface TypedBinding<A> extends Binding {
  readonly table: string
  readonly [RowTypeId]: { readonly _A: (_: never) => A }
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isTypedBinding = (u: unknown): u is TypedBinding<unknown> => Predicate.hasProperty(u, RowTypeId)

const rowTypeMarker = { _A: (_: never) => _ }

/**
 * Bindings typed by a `Database` type generated with `supabase gen types typescript`: the schema and
 * table are checked against it, and the channel's `postgresChanges(binding)` streams the table's
 * `Row` type with no Schema to write.
 *
 * The generated types call `int8` and `numeric` columns `number`; such a stream keeps to that: it
 * delivers them as numbers when a number holds the value exactly (an `int8` within 2^53, a `numeric`
 * of at most 15 significant digits), and treats a change with a value beyond that as one that does
 * not match (skipped, counted and logged, or `PayloadDecodeError` with `onDecodeError: "fail"`), never
 * as a rounded number. Give a Schema with string or bigint fields for such columns instead. There
 * is no run-time check of the other columns: the types are trusted as generated.
 *
 * ```ts
 * const todos = PostgresChanges.typed<Database>()({ event: "INSERT", schema: "public", table: "todos" })
 * const channel = yield* client.channel("db", { postgresChanges: [todos] })
 * channel.postgresChanges(todos) // Stream<Change<Database["public"]["Tables"]["todos"]["Row"]>>
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const typed = <Database>() =>
<const S extends SchemaName<Database>, const T extends TableName<Database, S>>(
  binding: {
    readonly event: Event
    readonly schema: S
    readonly table: T
    readonly filter?: string | FilterBuilder | undefined
    readonly select?: ReadonlyArray<string> | undefined
  }
): TypedBinding<TableRow<Database, S, T>> => {
  const out = { ...binding }
  // a symbol key: the config key, the wire and logs never see it; enumerable, so that a copy
  // (`{ ...binding, filter }`) stays typed at run time as it does in the types
  Object.defineProperty(out, RowTypeId, { value: rowTypeMarker, enumerable: true })
  return out as unknown as TypedBinding<TableRow<Database, S, T>>
}

/**
 * A binding as sent in the join's `config.postgres_changes` (the filter built to its string).
 *
 * @since 0.1.0
 * @category models
 */
export interface WireBinding {
  readonly event: Event
  readonly schema: string
  readonly table?: string
  readonly filter?: string
  readonly select?: ReadonlyArray<string>
}

/**
 * A binding as sent with the join, unchecked: a filter builder becomes its string; an empty filter
 * and an empty `select` are left out. Use {@link toWireEither} to check it first.
 *
 * @since 0.1.0
 * @category constructors
 */
export const toWire = (binding: Binding): WireBinding => {
  const filter = isFilterBuilder(binding.filter) ? binding.filter.toString() : binding.filter
  const select = binding.select !== undefined && binding.select.length > 0 ? [...binding.select] : undefined
  return {
    event: binding.event,
    schema: binding.schema,
    ...(binding.table !== undefined ? { table: binding.table } : {}),
    ...(filter !== undefined && filter.trim() !== "" ? { filter } : {}),
    ...(select !== undefined ? { select } : {})
  }
}

/**
 * A binding as sent with the join, checked before anything is sent: the filter is built and parsed
 * with the server's grammar (the server's error message becomes the `InvalidArgument` detail), an
 * unknown event and empty schema/table are refused, and so is `select` on a wildcard, as the server
 * would. An empty filter and an empty `select` are left out.
 *
 * @since 0.1.0
 * @category constructors
 */
export const toWireEither = (binding: Binding): Either.Either<WireBinding, InvalidArgument> => {
  const invalid = (detail: string) => Either.left(new InvalidArgument({ detail: `postgres_changes: ${detail}` }))
  if (!["INSERT", "UPDATE", "DELETE", "*"].includes(binding.event)) {
    return invalid(`unknown event ${JSON.stringify(binding.event)} (expected INSERT, UPDATE, DELETE or *)`)
  }
  if (typeof binding.schema !== "string" || binding.schema === "") return invalid("`schema` must be a non-empty string")
  if (binding.table !== undefined && (typeof binding.table !== "string" || binding.table === "")) {
    return invalid("`table` must be a non-empty string (omit it to listen to every table)")
  }
  let filter: string | undefined
  if (binding.filter !== undefined) {
    const built = isFilterBuilder(binding.filter) ? binding.filter.build() : Either.right(binding.filter)
    if (Either.isLeft(built)) return Either.left(built.left)
    if (typeof built.right !== "string") return invalid("`filter` must be a string or a filter builder")
    const parsed = internal.parseFilter(built.right)
    if (Either.isLeft(parsed)) return invalid(parsed.left)
    filter = built.right.trim() === "" ? undefined : built.right
  }
  const select = binding.select !== undefined && binding.select.length > 0 ? [...binding.select] : undefined
  if (select !== undefined) {
    if (!select.every((c) => typeof c === "string" && c !== "")) {
      return invalid("`select` must list column names")
    }
    if (binding.schema === "*" || binding.table === undefined || binding.table === "*") {
      return invalid(
        "Column selection is not supported for wildcard subscriptions. Provide an explicit schema and table name."
      )
    }
  }
  return Either.right({
    event: binding.event,
    schema: binding.schema,
    ...(binding.table !== undefined ? { table: binding.table } : {}),
    ...(filter !== undefined ? { filter } : {}),
    ...(select !== undefined ? { select } : {})
  })
}

/**
 * Whether a change of type `type` (`INSERT`, `UPDATE`, `DELETE`) is for a binding listening to
 * `event` (the client-side check next to the server's `ids`).
 *
 * @since 0.1.0
 * @category predicates
 */
export const acceptsEvent = (event: Event, type: string): boolean => event === "*" || event === type.toUpperCase()

// -----------------------------------------------------------------------------
// server ids
// -----------------------------------------------------------------------------

/**
 * One entry of `postgres_changes` in the server's ok join reply: the params as sent, plus `id`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReplyEntry {
  readonly id: number
  readonly event: string
  readonly schema?: string | null | undefined
  readonly table?: string | null | undefined
  readonly filter?: string | null | undefined
  readonly select?: ReadonlyArray<string> | null | undefined
}

/**
 * Gives each binding the ids of the reply entries with the same content (event case-insensitive,
 * schema, table, filter and select, where `null`, `undefined`, `""` and `[]` are all "absent"),
 * whatever their order. Identical bindings get the same ids. A reply entry that matches no binding,
 * a binding with no entry, or a malformed reply is a {@link PostgresBindingMismatch} naming it.
 *
 * `reply` is the `postgres_changes` field of the join reply's `response` (`undefined` when absent).
 *
 * @since 0.1.0
 * @category ids
 */
export const matchBindingIds = (
  bindings: ReadonlyArray<Binding>,
  reply: unknown
): Either.Either<ReadonlyArray<ReadonlyArray<number>>, PostgresBindingMismatch> => {
  const mismatch = (detail: string) => Either.left(new PostgresBindingMismatch({ detail }))
  if (reply === undefined || reply === null) {
    return bindings.length === 0
      ? Either.right([])
      : mismatch(`the server's reply lists no postgres_changes, expected ${bindings.length}`)
  }
  if (!Array.isArray(reply)) return mismatch(`the server's postgres_changes is not a list: ${describe(reply)}`)
  const byKey = new Map<string, Array<number>>()
  for (const entry of reply as ReadonlyArray<unknown>) {
    const id = Predicate.hasProperty(entry, "id") ? toId(entry.id) : undefined
    if (id === undefined || !Predicate.hasProperty(entry, "event") || typeof entry.event !== "string") {
      return mismatch(`malformed entry in the server's reply: ${describe(entry)}`)
    }
    const key = contentKey(entry as unknown as ReplyEntry)
    const ids = byKey.get(key) ?? []
    if (!ids.includes(id)) ids.push(id)
    byKey.set(key, ids)
  }
  const keys = bindings.map(bindingKey)
  const out: Array<ReadonlyArray<number>> = []
  for (let i = 0; i < bindings.length; i++) {
    const ids = byKey.get(keys[i]!)
    if (ids === undefined) return mismatch(`no server id for binding ${describeBinding(bindings[i]!)}`)
    out.push(ids)
  }
  const wanted = new Set(keys)
  for (const entry of reply as ReadonlyArray<ReplyEntry>) {
    if (!wanted.has(contentKey(entry))) return mismatch(`server binding ${describe(entry)} matches no binding`)
  }
  return Either.right(out)
}

const toId = (u: unknown): number | undefined => {
  if (typeof u === "number" && Number.isFinite(u)) return u
  if (typeof u === "string" && /^-?\d+$/.test(u)) return Number(u)
  return undefined
}

const absent = (u: unknown): string | null => (typeof u === "string" && u !== "" ? u : null)

const contentKey = (entry: {
  readonly event: string
  readonly schema?: unknown
  readonly table?: unknown
  readonly filter?: unknown
  readonly select?: unknown
}): string =>
  JSON.stringify([
    entry.event.toUpperCase(),
    absent(entry.schema),
    absent(entry.table),
    absent(typeof entry.filter === "string" ? entry.filter.trim() : entry.filter),
    // a non-string column (from the wire, of any depth) matches no binding
    Array.isArray(entry.select) && entry.select.length > 0
      ? entry.select.map((column: unknown) => typeof column === "string" ? column : null)
      : null
  ])

const bindingKey = (binding: Binding): string =>
  contentKey({
    event: binding.event,
    schema: binding.schema,
    table: binding.table,
    filter: isFilterBuilder(binding.filter) ? binding.filter.toString() : binding.filter,
    select: binding.select
  })

const describeBinding = (binding: Binding): string =>
  describe({
    event: binding.event,
    schema: binding.schema,
    table: binding.table,
    filter: isFilterBuilder(binding.filter) ? binding.filter.toString() : binding.filter,
    select: binding.select
  })

// bounded and depth-safe: replies and changes come from the wire
const describe = (u: unknown): string => Describe.describe(u, { maxLength: 300 })

// -----------------------------------------------------------------------------
// filter builder
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category type ids
 */
export const FilterTypeId: unique symbol = Symbol.for("supabase-realtime-effect/PostgresChanges/Filter")

/**
 * @since 0.1.0
 * @category type ids
 */
export type FilterTypeId = typeof FilterTypeId

/**
 * The operators the server evaluates (no `cs`/`cd`/`ov`/`fts`).
 *
 * @since 0.1.0
 * @category models
 */
export type FilterOperator =
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

/**
 * A scalar filter value (`bigint` for exact `int8` values).
 *
 * @since 0.1.0
 * @category models
 */
export type FilterValue = string | number | boolean | bigint | null

/**
 * A value of `is`.
 *
 * @since 0.1.0
 * @category models
 */
export type IsValue = null | boolean | "null" | "true" | "false" | "unknown"

/**
 * An element of `in` (`null` never matches in SQL: use `is`).
 *
 * @since 0.1.0
 * @category models
 */
export type InValue = string | number | boolean | bigint

/**
 * An immutable, chainable filter: each method returns a new builder with one more
 * `column=op.value` condition (conditions are ANDed). The output is byte-for-byte the one of
 * realtime-js's `postgresChangesFilter()`: values containing `,` `(` `)` `"` `\` or surrounding
 * whitespace are double-quoted PostgREST-style with `\` and `"` escaped; `in` drops duplicates.
 * One deliberate difference: an `in` element that is empty, `NULL` (any case) or contains `{` `}` is
 * quoted too, since the server reads the list as a Postgres array literal (realtime-js sends it bare:
 * a malformed literal, or a NULL that never matches).
 *
 * `build()` is the checked form (an empty `in`, an empty column or one containing `=` `,` `(` `)`
 * `"`, or an unknown operator or `is` value fail with `InvalidArgument`); `toString()` always gives
 * a string (an empty `in` renders as `in.()`, which matches nothing).
 *
 * @since 0.1.0
 * @category models
 */
export interface FilterBuilder extends Pipeable {
  readonly [FilterTypeId]: FilterTypeId
  /** The conditions so far, serialized. */
  readonly conditions: ReadonlyArray<string>
  /** Problems found so far (empty when valid). */
  readonly problems: ReadonlyArray<string>
  /** `column=eq.value` */
  eq(column: string, value: FilterValue): FilterBuilder
  /** `column=neq.value` */
  neq(column: string, value: FilterValue): FilterBuilder
  /** `column=gt.value` */
  gt(column: string, value: FilterValue): FilterBuilder
  /** `column=gte.value` */
  gte(column: string, value: FilterValue): FilterBuilder
  /** `column=lt.value` */
  lt(column: string, value: FilterValue): FilterBuilder
  /** `column=lte.value` */
  lte(column: string, value: FilterValue): FilterBuilder
  /** `column=in.(a,b)`: at least one value, duplicates dropped. */
  in(column: string, values: ReadonlyArray<InValue>): FilterBuilder
  /** `column=like.pattern` (`%` any run, `_` one character). */
  like(column: string, pattern: string): FilterBuilder
  /** `column=ilike.pattern`, case-insensitive. */
  ilike(column: string, pattern: string): FilterBuilder
  /** `column=match.regex` (POSIX `~`). */
  match(column: string, pattern: string): FilterBuilder
  /** `column=imatch.regex` (POSIX `~*`). */
  imatch(column: string, pattern: string): FilterBuilder
  /** `column=is.null|true|false|unknown`. */
  is(column: string, value: IsValue): FilterBuilder
  /** `column=isdistinct.value` (NULL-safe inequality). */
  isDistinct(column: string, value: FilterValue): FilterBuilder
  /** Any operator negated: `column=not.op.value`. */
  not(column: string, operator: "in", values: ReadonlyArray<InValue>): FilterBuilder
  not(column: string, operator: "is", value: IsValue): FilterBuilder
  not(column: string, operator: Exclude<FilterOperator, "in" | "is">, value: FilterValue): FilterBuilder
  /** The filter string, or the first problem. */
  build(): Either.Either<string, InvalidArgument>
  /** The filter string (unchecked; see {@link FilterBuilder}). */
  toString(): string
  toJSON(): string
}

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

class FilterBuilderImpl implements FilterBuilder {
  readonly [FilterTypeId]: FilterTypeId = FilterTypeId
  constructor(readonly conditions: ReadonlyArray<string>, readonly problems: ReadonlyArray<string>) {}

  private add(column: string, operator: FilterOperator, value: unknown, negate: boolean): FilterBuilder {
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
      if (!internal.operators.includes(operator)) problems.push(`unknown filter operator ${JSON.stringify(operator)}`)
      serialized = `${operator}.${scalar(value)}`
    }
    return new FilterBuilderImpl(
      [...this.conditions, `${column}=${negate ? "not." : ""}${serialized}`],
      [...this.problems, ...problems]
    )
  }

  eq(column: string, value: FilterValue) {
    return this.add(column, "eq", value, false)
  }
  neq(column: string, value: FilterValue) {
    return this.add(column, "neq", value, false)
  }
  gt(column: string, value: FilterValue) {
    return this.add(column, "gt", value, false)
  }
  gte(column: string, value: FilterValue) {
    return this.add(column, "gte", value, false)
  }
  lt(column: string, value: FilterValue) {
    return this.add(column, "lt", value, false)
  }
  lte(column: string, value: FilterValue) {
    return this.add(column, "lte", value, false)
  }
  in(column: string, values: ReadonlyArray<InValue>) {
    return this.add(column, "in", values, false)
  }
  like(column: string, pattern: string) {
    return this.add(column, "like", pattern, false)
  }
  ilike(column: string, pattern: string) {
    return this.add(column, "ilike", pattern, false)
  }
  match(column: string, pattern: string) {
    return this.add(column, "match", pattern, false)
  }
  imatch(column: string, pattern: string) {
    return this.add(column, "imatch", pattern, false)
  }
  is(column: string, value: IsValue) {
    return this.add(column, "is", value, false)
  }
  isDistinct(column: string, value: FilterValue) {
    return this.add(column, "isdistinct", value, false)
  }
  not(column: string, operator: FilterOperator, value: unknown): FilterBuilder {
    return this.add(column, operator, value, true)
  }
  build(): Either.Either<string, InvalidArgument> {
    return this.problems.length > 0
      ? Either.left(new InvalidArgument({ detail: this.problems[0]! }))
      : Either.right(this.toString())
  }
  toString(): string {
    return this.conditions.join(",")
  }
  toJSON(): string {
    return this.toString()
  }
  pipe() {
    return pipeArguments(this, arguments)
  }
}

/**
 * The filter builder: `Filter.make().eq("room", 1).in("status", ["open", "new"])`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const Filter: {
  /** An empty filter (no conditions: matches every row). */
  readonly make: () => FilterBuilder
} = {
  make: () => emptyFilter
}

const emptyFilter: FilterBuilder = new FilterBuilderImpl([], [])

/**
 * @since 0.1.0
 * @category guards
 */
export const isFilterBuilder = (u: unknown): u is FilterBuilder => Predicate.hasProperty(u, FilterTypeId)

// -----------------------------------------------------------------------------
// changes
// -----------------------------------------------------------------------------

/**
 * A column of a change (`type` is the Postgres type name: `int8`, `text`, `_int4`, ...).
 *
 * @since 0.1.0
 * @category models
 */
export interface Column {
  readonly name: string
  readonly type: string
}

/**
 * A row as received (after conversion unless noted).
 *
 * @since 0.1.0
 * @category models
 */
export type Row = { readonly [column: string]: unknown }

/**
 * The `new` of a DELETE and the `old` of an INSERT.
 *
 * @since 0.1.0
 * @category models
 */
export type EmptyRow = { readonly [column: string]: never }

/**
 * `payload.data` of a `postgres_changes` message.
 *
 * @since 0.1.0
 * @category models
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

interface ChangeBase {
  readonly schema: string
  readonly table: string
  readonly commit_timestamp: string
  /** Server errors, e.g. `Error 401: Unauthorized`, `Error 413: Payload Too Large`; `null` if none. */
  readonly errors: ReadonlyArray<string> | null
}

/**
 * @since 0.1.0
 * @category models
 */
export interface InsertChange<A = Row> extends ChangeBase {
  readonly eventType: "INSERT"
  readonly new: A
  readonly old: EmptyRow
}

/**
 * `old` holds the primary key only, unless the table has `REPLICA IDENTITY FULL`.
 *
 * @since 0.1.0
 * @category models
 */
export interface UpdateChange<A = Row> extends ChangeBase {
  readonly eventType: "UPDATE"
  readonly new: A
  readonly old: Partial<A>
}

/**
 * `old` holds the primary key only, unless the table has `REPLICA IDENTITY FULL`.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeleteChange<A = Row> extends ChangeBase {
  readonly eventType: "DELETE"
  readonly new: EmptyRow
  readonly old: Partial<A>
}

/**
 * A change, in realtime-js's shape (`eventType`, `new`, `old`, ...).
 *
 * @since 0.1.0
 * @category models
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
 *
 * @since 0.1.0
 * @category models
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
 *
 * @since 0.1.0
 * @category conversions
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
  const parsed = internal.parseArrayLiteral(trimmed)
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
 *
 * @since 0.1.0
 * @category conversions
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
 *
 * @since 0.1.0
 * @category conversions
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
 * a `ProtocolError`, not a crash. Extra keys (such as `type_modifier` in columns) are tolerated and
 * `type` is case-insensitive.
 *
 * @since 0.1.0
 * @category conversions
 */
export const convertChange = (data: unknown, options?: ConvertOptions): Either.Either<Change, ProtocolError> => {
  const fail = (detail: string) =>
    Either.left(new ProtocolError({ reason: "UnsupportedPayload", detail: `postgres_changes: ${detail}` }))
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
    !columns.every((c) => Predicate.hasProperty(c, "name") && typeof c.name === "string")
  ) {
    return fail("`columns` is not a list of {name, type}")
  }
  for (const field of ["record", "old_record"] as const) {
    const row = data[field]
    if (row !== undefined && row !== null && !isRecord(row)) return fail(`\`${field}\` is not an object`)
  }
  const errors = data["errors"]
  if (errors !== undefined && errors !== null && !Array.isArray(errors)) return fail("`errors` is not a list")
  return Either.right(convertRawChange({
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
 *
 * @internal
 */
export const toGeneratedTypes = (data: unknown, change: Change): Either.Either<Change, string> => {
  const columns = isRecord(data) && Array.isArray(data["columns"]) ? data["columns"] : []
  const numeric = new Map<string, string>()
  for (const c of columns) {
    if (!isRecord(c) || typeof c["name"] !== "string" || typeof c["type"] !== "string") continue
    const type = c["type"].startsWith("_") ? c["type"].slice(1) : c["type"]
    if (type === "int8" || type === "numeric") numeric.set(c["name"], type)
  }
  if (numeric.size === 0) return Either.right(change)
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
  return refused === undefined ? Either.right(converted) : Either.left(refused)
}

// The number a decimal text stands for, when a double holds it exactly (an integer within 2^53, a
// decimal whose double prints back to the same value); undefined else, never a rounded number.
const exactNumber = (text: string, type: string): number | undefined => {
  const trimmed = text.trim()
  if (type === "numeric" && /^[+-]?(NaN|Infinity)$/.test(trimmed)) return Number(trimmed)
  if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(trimmed)) return undefined
  const n = Number(trimmed)
  if (type === "int8") return Number.isSafeInteger(n) ? n : undefined
  return internal.isExactNumber(trimmed) ? n : undefined
}

/**
 * `JSON.parse`, except that a number a double cannot hold exactly (an `int8` beyond 2^53, a
 * `numeric` with many digits) is kept as its decimal text, a string. Use it on the text of
 * `postgres_changes` frames so {@link convertChange} sees exact `int8` / `numeric` values. Numbers
 * that round-trip (all the usual ones) stay numbers.
 *
 * @since 0.1.0
 * @category conversions
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
      if (!internal.isExactNumber(token)) {
        out += text.slice(last, i) + "\"" + token + "\""
        last = j
        changed = true
      }
      i = j - 1
    }
  }
  return JSON.parse(changed ? out + text.slice(last) : text)
}
