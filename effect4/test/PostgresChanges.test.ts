// The Effect 4 edition's PostgresChanges surface: `Result` where Effect 3 returns `Either`, the core's
// plain error details wrapped into the edition's tagged errors, the pipeable filter builder, and
// `typed<Database>()`. The algorithms themselves (filter grammar and serialization, id matching,
// value conversion) are the core's (`src/core/postgres/`), covered once by the Effect 3 suite
// (`test/PostgresChanges.test.ts`).
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { pipe } from "effect/Function"
import * as Result from "effect/Result"
import * as CoreBindings from "../../src/core/postgres/bindings.js"
import * as CoreConvert from "../../src/core/postgres/convert.js"
import { withExactPostgresNumbers } from "../src/internal/exactNumbers.js"
import * as PostgresChanges from "../src/PostgresChanges.js"
import type { Binding, FilterBuilder } from "../src/PostgresChanges.js"
import * as Protocol from "../src/Protocol.js"
import { InvalidArgument, PostgresBindingMismatch, ProtocolError } from "../src/RealtimeError.js"

const make = PostgresChanges.Filter.make

const success = <A, E>(r: Result.Result<A, E>): A => {
  if (Result.isFailure(r)) throw new Error(`expected a success, got a failure: ${String(r.failure)}`)
  return r.success
}

const failure = <A, E>(r: Result.Result<A, E>): E => {
  if (Result.isSuccess(r)) throw new Error(`expected a failure, got a success: ${JSON.stringify(r.success)}`)
  return r.failure
}

// -----------------------------------------------------------------------------
// filter builder
// -----------------------------------------------------------------------------

describe("Filter builder", () => {
  it("chains, is immutable, and serializes as realtime-js (the core's conditions)", () => {
    const base = make().eq("room", 1)
    const a = base.in("status", ["open", "new", "open"]).not("deleted_at", "is", null)
    expect(base.toString()).toBe("room=eq.1")
    expect(a.toString()).toBe("room=eq.1,status=in.(open,new),deleted_at=not.is.null")
    expect(a.conditions).toEqual(["room=eq.1", "status=in.(open,new)", "deleted_at=not.is.null"])
    expect(a.problems).toEqual([])
    expect(`${a}`).toBe(a.toString())
    expect(JSON.stringify({ filter: a })).toBe(`{"filter":${JSON.stringify(a.toString())}}`)
    expect(make().toString()).toBe("")
  })

  it("is pipeable (Effect 4's Pipeable)", () => {
    const f = make().pipe((b) => b.eq("a", 1), (b) => b.gt("b", 2), (b) => b.ilike("c", "%x%"))
    expect(f.toString()).toBe("a=eq.1,b=gt.2,c=ilike.%x%")
    expect(pipe(make(), (b) => b.lte("n", 9007199254740993n)).toString()).toBe("n=lte.9007199254740993")
    expectTypeOf(f).toEqualTypeOf<FilterBuilder>()
  })

  it("build() is a Result: the string, or the first problem as an InvalidArgument", () => {
    const ok = make().eq("id", 1).build()
    expect(Result.isSuccess(ok)).toBe(true)
    expect(success(ok)).toBe("id=eq.1")
    expect(success(make().build())).toBe("")
    const bad = make().eq("a", 1).in("status", []).eq("", 2)
    const error = failure(bad.build())
    expect(error).toBeInstanceOf(InvalidArgument)
    expect(error._tag).toBe("InvalidArgument")
    expect(error.detail).toBe("`in` filter on \"status\" requires at least one value")
    expect(error.message).toBe(error.detail)
    // never a throw: the unchecked string is still there
    expect(bad.toString()).toBe("a=eq.1,status=in.(),=eq.2")
    expect(bad.problems).toHaveLength(2)
    expectTypeOf(bad.build()).toEqualTypeOf<Result.Result<string, InvalidArgument>>()
  })

  it("isFilterBuilder; the core recognizes the builder by its type id", () => {
    const f = make().eq("a", 1)
    expect(PostgresChanges.isFilterBuilder(f)).toBe(true)
    expect(PostgresChanges.isFilterBuilder("a=eq.1")).toBe(false)
    expect(PostgresChanges.isFilterBuilder(null)).toBe(false)
    expect(PostgresChanges.FilterTypeId).toBe(CoreBindings.FilterTypeId)
    expect(CoreBindings.isFilterLike(f)).toBe(true)
  })
})

// -----------------------------------------------------------------------------
// bindings
// -----------------------------------------------------------------------------

describe("bindings", () => {
  const binding: Binding = { event: "UPDATE", schema: "public", table: "orders", filter: make().gt("amount", 100) }

  it("toWire builds the filter; toWireResult checks it first", () => {
    const wire = { event: "UPDATE", schema: "public", table: "orders", filter: "amount=gt.100" }
    expect(PostgresChanges.toWire(binding)).toEqual(wire)
    expect(success(PostgresChanges.toWireResult(binding))).toEqual(wire)
    expectTypeOf(PostgresChanges.toWireResult(binding)).toEqualTypeOf<
      Result.Result<PostgresChanges.WireBinding, InvalidArgument>
    >()
  })

  it("toWireResult wraps the core's detail into InvalidArgument (the server's words)", () => {
    const error = failure(PostgresChanges.toWireResult({ event: "*", schema: "public", table: "t", filter: "a=in.1" }))
    expect(error).toBeInstanceOf(InvalidArgument)
    expect(error.message).toBe(
      "postgres_changes: Error parsing `filter` params: `in` filter value must be wrapped by parentheses"
    )
    expect(failure(PostgresChanges.toWireResult({ event: "*", schema: "s", filter: make().in("a", []) })).detail)
      .toContain("requires at least one value")
    expect(failure(PostgresChanges.toWireResult({ event: "TRUNCATE" as any, schema: "s" })).detail).toContain(
      "unknown event"
    )
  })

  it("acceptsEvent", () => {
    expect(PostgresChanges.acceptsEvent("*", "DELETE")).toBe(true)
    expect(PostgresChanges.acceptsEvent("INSERT", "insert")).toBe(true)
    expect(PostgresChanges.acceptsEvent("INSERT", "UPDATE")).toBe(false)
  })

  it("matchBindingIds is a Result; a mismatch is a PostgresBindingMismatch", () => {
    const bindings: ReadonlyArray<Binding> = [binding, { event: "DELETE", schema: "public" }]
    const reply = bindings.map((b, i) => ({ ...PostgresChanges.toWire(b), id: 10 + i }))
    expect(success(PostgresChanges.matchBindingIds(bindings, [reply[1], reply[0]]))).toEqual([[10], [11]])
    const error = failure(PostgresChanges.matchBindingIds(bindings, reply.slice(1)))
    expect(error).toBeInstanceOf(PostgresBindingMismatch)
    expect(error._tag).toBe("PostgresBindingMismatch")
    expect(error.detail).toContain("no server id for binding")
    expect(error.message).toContain("mismatch between server and client bindings for postgres changes: ")
    expect(failure(PostgresChanges.matchBindingIds(bindings, { a: 1 })).detail).toContain("not a list")
  })
})

// -----------------------------------------------------------------------------
// typed bindings
// -----------------------------------------------------------------------------

type Json = string | number | boolean | null | { [key: string]: Json | undefined } | Array<Json>

// the shape of `supabase gen types typescript` output (2.x), trimmed
type Database = {
  __InternalSupabase: { PostgrestVersion: "13.0.5" }
  public: {
    Tables: {
      todos: {
        Row: { id: number; title: string; owner: string | null }
        Insert: { id?: number; title: string; owner?: string | null }
        Update: { id?: number; title?: string; owner?: string | null }
        Relationships: []
      }
      events: {
        Row: { id: string; payload: Json }
        Insert: { id?: string; payload: Json }
        Update: { id?: string; payload?: Json }
        Relationships: []
      }
    }
    Views: { [_ in never]: never }
  }
  audit: {
    Tables: {
      log: {
        Row: { at: string }
        Insert: { at?: string }
        Update: { at?: string }
        Relationships: []
      }
    }
  }
}
type Todo = Database["public"]["Tables"]["todos"]["Row"]

describe("typed<Database>()", () => {
  const todos = PostgresChanges.typed<Database>()({ event: "INSERT", schema: "public", table: "todos" })

  it("types: schemas and tables come from the Database type; the binding carries the Row", () => {
    expectTypeOf<PostgresChanges.SchemaName<Database>>().toEqualTypeOf<"public" | "audit">()
    expectTypeOf<PostgresChanges.TableName<Database, "public">>().toEqualTypeOf<"todos" | "events">()
    expectTypeOf<PostgresChanges.TableRow<Database, "audit", "log">>().toEqualTypeOf<{ at: string }>()
    expectTypeOf(todos).toEqualTypeOf<PostgresChanges.TypedBinding<Todo>>()
    expectTypeOf(todos).toMatchTypeOf<Binding>()
    // @ts-expect-error: no such table
    PostgresChanges.typed<Database>()({ event: "*", schema: "public", table: "nope" })
    // @ts-expect-error: the table is in another schema
    PostgresChanges.typed<Database>()({ event: "*", schema: "audit", table: "todos" })
    // @ts-expect-error: __InternalSupabase is not a schema
    PostgresChanges.typed<Database>()({ event: "*", schema: "__InternalSupabase", table: "todos" })
    // @ts-expect-error: not an event
    PostgresChanges.typed<Database>()({ event: "TRUNCATE", schema: "public", table: "todos" })
    // a filter builder and a select are accepted
    const filtered = PostgresChanges.typed<Database>()({
      event: "*",
      schema: "public",
      table: "todos",
      filter: make().eq("owner", "ada"),
      select: ["id", "title"]
    })
    expect(PostgresChanges.toWire(filtered)).toEqual({
      event: "*",
      schema: "public",
      table: "todos",
      filter: "owner=eq.ada",
      select: ["id", "title"]
    })
  })

  it("a typed binding is a plain binding on the wire, in JSON and in its keys; a copy stays typed", () => {
    expect(JSON.parse(JSON.stringify(todos))).toEqual({ event: "INSERT", schema: "public", table: "todos" })
    expect(Object.keys(todos)).toEqual(["event", "schema", "table"])
    expect(PostgresChanges.toWire(todos)).toEqual({ event: "INSERT", schema: "public", table: "todos" })
    expect(PostgresChanges.isTypedBinding(todos)).toBe(true)
    expect(PostgresChanges.isTypedBinding({ event: "*", schema: "public" })).toBe(false)
    expect(PostgresChanges.isTypedBinding({ ...todos, filter: "owner=eq.ada" })).toBe(true)
    expect(PostgresChanges.RowTypeId in todos).toBe(true)
  })
})

// -----------------------------------------------------------------------------
// changes
// -----------------------------------------------------------------------------

describe("changes", () => {
  const base = {
    schema: "public",
    table: "todos",
    commit_timestamp: "2024-01-01T00:00:00Z",
    columns: [{ name: "id", type: "int8" }, { name: "done", type: "bool" }],
    errors: null
  }

  it("convertChange is a Result with the converted change", () => {
    const result = PostgresChanges.convertChange({ ...base, type: "INSERT", record: { id: "1", done: "f" } })
    expect(success(result)).toEqual({
      schema: "public",
      table: "todos",
      commit_timestamp: "2024-01-01T00:00:00Z",
      eventType: "INSERT",
      new: { id: "1", done: false },
      old: {},
      errors: null
    })
    const bigint = PostgresChanges.convertChange({ ...base, type: "DELETE", old_record: { id: "12" } }, {
      int8: "bigint"
    })
    expect(success(bigint)).toMatchObject({ eventType: "DELETE", new: {}, old: { id: 12n } })
    expectTypeOf(result).toEqualTypeOf<Result.Result<PostgresChanges.Change, ProtocolError>>()
  })

  it("malformed data is a ProtocolError (UnsupportedPayload) with the core's detail, never a throw", () => {
    for (
      const bad of [null, 1, "x", { type: "TRUNCATE", schema: "s", table: "t" }, {
        ...base,
        type: "INSERT",
        columns: 1
      }]
    ) {
      const error = failure(PostgresChanges.convertChange(bad))
      expect(error).toBeInstanceOf(ProtocolError)
      expect(error._tag).toBe("ProtocolError")
      expect(error.reason).toBe("UnsupportedPayload")
      const core = CoreConvert.convertChange(bad)
      expect(core.ok).toBe(false)
      expect(error.detail).toBe(core.ok ? undefined : core.error)
    }
  })

  it("toGeneratedTypes is a Result with the reason as a string", () => {
    const columns = [{ name: "id", type: "int8" }]
    const change = (id: string) => {
      const data = { ...base, columns, type: "INSERT", record: { id } }
      return PostgresChanges.toGeneratedTypes(data, success(PostgresChanges.convertChange(data)))
    }
    expect(success(change("42")).new).toEqual({ id: 42 })
    const refused = failure(change("9223372036854775807"))
    expect(typeof refused).toBe("string")
  })

  it("the pure conversions are the core's", () => {
    expect(PostgresChanges.convertCell).toBe(CoreConvert.convertCell)
    expect(PostgresChanges.convertRow).toBe(CoreConvert.convertRow)
    expect(PostgresChanges.convertRawChange).toBe(CoreConvert.convertRawChange)
    expect(PostgresChanges.parseJsonPreservingPrecision).toBe(CoreConvert.parseJsonPreservingPrecision)
    expect(PostgresChanges.convertCell("int8", "9223372036854775807")).toBe("9223372036854775807")
  })
})

// -----------------------------------------------------------------------------
// exact numbers on the edition's serializer
// -----------------------------------------------------------------------------

describe("withExactPostgresNumbers", () => {
  const serializer = withExactPostgresNumbers(Protocol.makeV1())
  const frame = (event: string, record: string) =>
    `{"join_ref":"1","ref":null,"topic":"realtime:db","event":"${event}","payload":{"ids":[1],"data":{"schema":"public","table":"t","commit_timestamp":"x","type":"INSERT","columns":[{"name":"id","type":"int8"}],"record":${record},"errors":null}}}`

  it("a postgres_changes frame with a long digit run keeps its int8 exact", () => {
    const decoded = success(serializer.decode(frame("postgres_changes", "{\"id\":9223372036854775807}")))
    const data = (decoded.payload as { readonly data: unknown }).data
    expect(success(PostgresChanges.convertChange(data)).new).toEqual({ id: "9223372036854775807" })
  })

  it("other frames are the serializer's own result; failures pass through", () => {
    const plain = Protocol.makeV1()
    const other = frame("broadcast", "{\"id\":9223372036854775807}")
    expect(serializer.decode(other)).toEqual(plain.decode(other))
    const small = frame("postgres_changes", "{\"id\":1}")
    expect(serializer.decode(small)).toEqual(plain.decode(small))
    const broken = serializer.decode("{not json")
    expect(Result.isFailure(broken)).toBe(true)
    expect(failure(broken)).toBeInstanceOf(ProtocolError)
    expect(serializer.vsn).toBe(plain.vsn)
    const heartbeat = { joinRef: null, ref: "1", topic: "phoenix", event: "heartbeat", payload: {} }
    expect(serializer.encode(heartbeat)).toEqual(plain.encode(heartbeat))
  })
})
