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
import * as Bindings from "./core/postgres/bindings.js"
import * as Convert from "./core/postgres/convert.js"
import * as CoreFilter from "./core/postgres/filter.js"
import type * as Protocol from "./Protocol.js"
import { InvalidArgument, PostgresBindingMismatch, ProtocolError } from "./RealtimeError.js"

// -----------------------------------------------------------------------------
// bindings
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export type Event = Bindings.Event

/**
 * What to listen to: an event (`*` for all) on a schema (`*` for all), optionally one table (absent
 * or `*` for all), a filter (`col=op.value`, ANDed by commas; a string or a {@link FilterBuilder}),
 * and a column projection (`select`, needs an explicit schema and table).
 *
 * @since 0.1.0
 * @category models
 */
export interface Binding extends Bindings.Binding<FilterBuilder> {}

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
 * A binding as sent in the join's `config.postgres_changes` (the filter built to its string): a
 * `Protocol.PostgresChangesFilter`.
 *
 * @since 0.1.0
 * @category models
 */
export type WireBinding = Protocol.PostgresChangesFilter

/**
 * A binding as sent with the join, unchecked: a filter builder becomes its string; an empty filter
 * and an empty `select` are left out. Use {@link toWireEither} to check it first.
 *
 * @since 0.1.0
 * @category constructors
 */
export const toWire: (binding: Binding) => WireBinding = Bindings.toWire

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
  const result = Bindings.toWireChecked(binding)
  return result.ok ? Either.right(result.value) : Either.left(new InvalidArgument({ detail: result.error }))
}

/**
 * Whether a change of type `type` (`INSERT`, `UPDATE`, `DELETE`) is for a binding listening to
 * `event` (the client-side check next to the server's `ids`).
 *
 * @since 0.1.0
 * @category predicates
 */
export const acceptsEvent: (event: Event, type: string) => boolean = Bindings.acceptsEvent

// -----------------------------------------------------------------------------
// server ids
// -----------------------------------------------------------------------------

/**
 * One entry of `postgres_changes` in the server's ok join reply: the params as sent, plus `id`.
 *
 * @since 0.1.0
 * @category models
 */
export type ReplyEntry = Bindings.ReplyEntry

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
  const result = Bindings.matchBindingIds(bindings, reply)
  return result.ok ? Either.right(result.value) : Either.left(new PostgresBindingMismatch({ detail: result.error }))
}

// -----------------------------------------------------------------------------
// filter builder
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category type ids
 */
export const FilterTypeId: typeof Bindings.FilterTypeId = Bindings.FilterTypeId

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
export type FilterOperator = CoreFilter.Operator

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

class FilterBuilderImpl implements FilterBuilder {
  readonly [FilterTypeId]: FilterTypeId = FilterTypeId
  constructor(readonly conditions: ReadonlyArray<string>, readonly problems: ReadonlyArray<string>) {}

  private add(column: string, operator: FilterOperator, value: unknown, negate: boolean): FilterBuilder {
    const next = CoreFilter.condition(column, operator, value, negate)
    return new FilterBuilderImpl([...this.conditions, next.condition], [...this.problems, ...next.problems])
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
    const built = Bindings.build(this)
    return built.ok ? Either.right(built.value) : Either.left(new InvalidArgument({ detail: built.error }))
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
export type Column = Convert.Column

/**
 * A row as received (after conversion unless noted).
 *
 * @since 0.1.0
 * @category models
 */
export type Row = Convert.Row

/**
 * The `new` of a DELETE and the `old` of an INSERT.
 *
 * @since 0.1.0
 * @category models
 */
export type EmptyRow = Convert.EmptyRow

/**
 * `payload.data` of a `postgres_changes` message.
 *
 * @since 0.1.0
 * @category models
 */
export type RawChange = Convert.RawChange

/**
 * @since 0.1.0
 * @category models
 */
export type InsertChange<A = Row> = Convert.InsertChange<A>

/**
 * `old` holds the primary key only, unless the table has `REPLICA IDENTITY FULL`.
 *
 * @since 0.1.0
 * @category models
 */
export type UpdateChange<A = Row> = Convert.UpdateChange<A>

/**
 * `old` holds the primary key only, unless the table has `REPLICA IDENTITY FULL`.
 *
 * @since 0.1.0
 * @category models
 */
export type DeleteChange<A = Row> = Convert.DeleteChange<A>

/**
 * A change, in realtime-js's shape (`eventType`, `new`, `old`, ...).
 *
 * @since 0.1.0
 * @category models
 */
export type Change<A = Row> = Convert.Change<A>

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
export type ConvertOptions = Convert.ConvertOptions

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
export const convertCell: (type: string, value: unknown, options?: ConvertOptions) => unknown = Convert.convertCell

/**
 * Converts every field of a row by its column's type (as realtime-js's `convertChangeData`):
 * fields without a column, or whose type is in `skipTypes`, are left as they are.
 *
 * @since 0.1.0
 * @category conversions
 */
export const convertRow: (
  columns: ReadonlyArray<Column>,
  row: Row | null | undefined,
  options?: ConvertOptions
) => Row = Convert.convertRow

/**
 * Turns a well-formed `payload.data` into a {@link Change}: INSERT has `new` (and `old = {}`),
 * UPDATE both, DELETE `old` (and `new = {}`), values converted per {@link ConvertOptions}.
 *
 * @since 0.1.0
 * @category conversions
 */
export const convertRawChange: (data: RawChange, options?: ConvertOptions) => Change = Convert.convertRawChange

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
  const result = Convert.convertChange(data, options)
  return result.ok
    ? Either.right(result.value)
    : Either.left(new ProtocolError({ reason: "UnsupportedPayload", detail: result.error }))
}

/**
 * A change converted exactly (`int8` and `numeric` as strings) made to follow generated types:
 * `int8` / `numeric` values (and their arrays' elements) become numbers when a number holds them
 * exactly, else the change is refused with a reason.
 *
 * @internal
 */
export const toGeneratedTypes = (data: unknown, change: Change): Either.Either<Change, string> => {
  const result = Convert.toGeneratedTypes(data, change)
  return result.ok ? Either.right(result.value) : Either.left(result.error)
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
export const parseJsonPreservingPrecision: (text: string) => unknown = Convert.parseJsonPreservingPrecision
