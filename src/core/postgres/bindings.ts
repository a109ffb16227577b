/**
 * Postgres changes bindings without Effect: their wire form (checked or not), the event check, and
 * the matching of the server's binding ids in a join reply to the bindings sent.
 */
import * as Describe from "../describe.js"
import * as Result from "../result.js"
import * as Filter from "./filter.js"

/** A change event name; `*` matches all. */
export type Event = "INSERT" | "UPDATE" | "DELETE" | "*"

/** The key that marks a filter builder (the edition's builder carries it). */
export const FilterTypeId: unique symbol = Symbol.for("supabase-realtime-effect/PostgresChanges/Filter")

/** The key that marks a filter builder. */
export type FilterTypeId = typeof FilterTypeId

/** What the core reads of a filter builder: its conditions so far and its problems. */
export interface FilterLike {
  readonly [FilterTypeId]: unknown
  /** Problems found so far (empty when valid). */
  readonly problems: ReadonlyArray<string>
  /** The filter string (unchecked). */
  toString(): string
}

/** Whether `u` is a filter builder (carries {@link FilterTypeId}). */
export const isFilterLike = (u: unknown): u is FilterLike =>
  ((typeof u === "object" && u !== null) || typeof u === "function") && FilterTypeId in u

/**
 * What to listen to; `Filter` is the filter builder's type (each edition's `Binding` is this one with
 * its own builder).
 */
export interface Binding<Filter extends FilterLike = FilterLike> {
  readonly event: Event
  readonly schema: string
  readonly table?: string | undefined
  readonly filter?: string | Filter | undefined
  readonly select?: ReadonlyArray<string> | undefined
}

/**
 * A binding as sent in the join's `config.postgres_changes` (the filter built to its string).
 */
export interface WireBinding {
  readonly event: Event
  readonly schema: string
  readonly table?: string | undefined
  readonly filter?: string | undefined
  readonly select?: ReadonlyArray<string> | undefined
}

/**
 * A binding as sent with the join, unchecked: a filter builder becomes its string; an empty filter
 * and an empty `select` are left out. Use {@link toWireChecked} to check it first.
 */
export const toWire = (binding: Binding): WireBinding => {
  const filter = isFilterLike(binding.filter) ? binding.filter.toString() : binding.filter
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
 * with the server's grammar (the server's error message becomes the error's detail), an
 * unknown event and empty schema/table are refused, and so is `select` on a wildcard, as the server
 * would. An empty filter and an empty `select` are left out.
 */
export const toWireChecked = (binding: Binding): Result.Result<WireBinding, string> => {
  const invalid = (detail: string) => Result.err(`postgres_changes: ${detail}`)
  if (!["INSERT", "UPDATE", "DELETE", "*"].includes(binding.event)) {
    return invalid(`unknown event ${JSON.stringify(binding.event)} (expected INSERT, UPDATE, DELETE or *)`)
  }
  if (typeof binding.schema !== "string" || binding.schema === "") return invalid("`schema` must be a non-empty string")
  if (binding.table !== undefined && (typeof binding.table !== "string" || binding.table === "")) {
    return invalid("`table` must be a non-empty string (omit it to listen to every table)")
  }
  let filter: string | undefined
  if (binding.filter !== undefined) {
    const built: unknown = isFilterLike(binding.filter) ? build(binding.filter) : Result.ok(binding.filter)
    const checked = built as Result.Result<unknown, string>
    if (!checked.ok) return Result.err(checked.error)
    if (typeof checked.value !== "string") return invalid("`filter` must be a string or a filter builder")
    const parsed = Filter.parseFilter(checked.value)
    if (!parsed.ok) return invalid(parsed.error)
    filter = checked.value.trim() === "" ? undefined : checked.value
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
  return Result.ok({
    event: binding.event,
    schema: binding.schema,
    ...(binding.table !== undefined ? { table: binding.table } : {}),
    ...(filter !== undefined ? { filter } : {}),
    ...(select !== undefined ? { select } : {})
  })
}

/** A filter builder's string, or its first problem. */
export const build = (filter: FilterLike): Result.Result<string, string> =>
  filter.problems.length > 0 ? Result.err(filter.problems[0]!) : Result.ok(filter.toString())

/**
 * Whether a change of type `type` (`INSERT`, `UPDATE`, `DELETE`) is for a binding listening to
 * `event` (the client-side check next to the server's `ids`).
 */
export const acceptsEvent = (event: Event, type: string): boolean => event === "*" || event === type.toUpperCase()

/**
 * One entry of `postgres_changes` in the server's ok join reply: the params as sent, plus `id`.
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
 * a binding with no entry, or a malformed reply is an error naming it (its detail).
 *
 * `reply` is the `postgres_changes` field of the join reply's `response` (`undefined` when absent).
 */
export const matchBindingIds = (
  bindings: ReadonlyArray<Binding>,
  reply: unknown
): Result.Result<ReadonlyArray<ReadonlyArray<number>>, string> => {
  const mismatch = (detail: string) => Result.err(detail)
  if (reply === undefined || reply === null) {
    return bindings.length === 0
      ? Result.ok([])
      : mismatch(`the server's reply lists no postgres_changes, expected ${bindings.length}`)
  }
  if (!Array.isArray(reply)) return mismatch(`the server's postgres_changes is not a list: ${describe(reply)}`)
  const byKey = new Map<string, Array<number>>()
  for (const entry of reply as ReadonlyArray<unknown>) {
    const id = has(entry, "id") ? toId(entry.id) : undefined
    if (id === undefined || !has(entry, "event") || typeof entry.event !== "string") {
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
  return Result.ok(out)
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

// a binding's content, its filter builder as its string
const content = (binding: Binding) => ({
  event: binding.event,
  schema: binding.schema,
  table: binding.table,
  filter: isFilterLike(binding.filter) ? binding.filter.toString() : binding.filter,
  select: binding.select
})

const bindingKey = (binding: Binding): string => contentKey(content(binding))

const describeBinding = (binding: Binding): string => describe(content(binding))

// bounded and depth-safe: replies and changes come from the wire
const describe = (u: unknown): string => Describe.describe(u, { maxLength: 300 })

// an object (or function) with the key, as `Predicate.hasProperty` of effect
const has = <K extends PropertyKey>(u: unknown, key: K): u is { readonly [k in K]: unknown } =>
  ((typeof u === "object" && u !== null) || typeof u === "function") && key in u
