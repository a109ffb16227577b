/**
 * Postgres changes typed by a `Database` type as `supabase gen types typescript` writes it: the
 * binding checks schema and table at compile time, the stream carries the table's `Row`, and
 * `int8` / `numeric` columns arrive as the numbers the types promise, or not at all when a number
 * cannot hold them (never rounded). Against the in-process server, under `TestClock`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Metric, Option, Result, Stream } from "effect"
import { expectTypeOf } from "vitest"
import * as PostgresChanges from "../src/PostgresChanges.js"
import * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import type { InvalidArgument, PayloadDecodeError } from "../src/RealtimeError.js"
import * as RealtimeServer from "../src/testing/RealtimeServer.js"
import * as RealtimeTest from "../src/testing/RealtimeTest.js"

type Json = string | number | boolean | null | { [key: string]: Json | undefined } | Array<Json>

// the shape of `supabase gen types typescript` output (2.x), trimmed to two tables
type Database = {
  __InternalSupabase: { PostgrestVersion: "13.0.5" }
  public: {
    Tables: {
      todos: {
        Row: { id: number; title: string; owner: string | null; price: number | null; tags: Array<number> | null }
        Insert: {
          id?: number
          title: string
          owner?: string | null
          price?: number | null
          tags?: Array<number> | null
        }
        Update: {
          id?: number
          title?: string
          owner?: string | null
          price?: number | null
          tags?: Array<number> | null
        }
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
    Functions: { [_ in never]: never }
    Enums: { [_ in never]: never }
    CompositeTypes: { [_ in never]: never }
  }
}
type Todo = Database["public"]["Tables"]["todos"]["Row"]

const columns = [
  { name: "id", type: "int8" },
  { name: "title", type: "text" },
  { name: "owner", type: "text" },
  { name: "price", type: "numeric" },
  { name: "tags", type: "_int8" }
]

const todos = PostgresChanges.typed<Database>()({ event: "*", schema: "public", table: "todos" })

const subscribed = Effect.gen(function*() {
  const client = yield* RealtimeClient.RealtimeClient
  const channel = yield* client.channel("db", { postgresChanges: [todos] })
  yield* channel.subscribe
  const server = yield* RealtimeServer.RealtimeServer
  yield* server.waitUntil((s) => s.channels.some((c) => c.topic === "realtime:db" && c.postgresSubscribed))
  return { channel, server }
})

describe("Postgres changes typed by generated Database types", () => {
  it("types: schema and table are checked, the stream carries the table's Row", () => {
    expectTypeOf(todos).toMatchTypeOf<PostgresChanges.Binding>()
    expectTypeOf<PostgresChanges.SchemaName<Database>>().toEqualTypeOf<"public">()
    expectTypeOf<PostgresChanges.TableName<Database, "public">>().toEqualTypeOf<"todos" | "events">()
    // @ts-expect-error: no such table
    PostgresChanges.typed<Database>()({ event: "*", schema: "public", table: "nope" })
    // @ts-expect-error: __InternalSupabase is not a schema
    PostgresChanges.typed<Database>()({ event: "*", schema: "__InternalSupabase", table: "todos" })
    // checked by tsc (never run)
    const streams = (channel: RealtimeChannel.RealtimeChannel) => {
      const typed = channel.postgresChanges(todos)
      type Typed = Stream.Success<typeof typed>
      expectTypeOf<Extract<Typed, { eventType: "INSERT" }>["new"]>().toEqualTypeOf<Todo>()
      expectTypeOf<Typed>().toMatchTypeOf<PostgresChanges.Change<Todo>>()
      expectTypeOf<PostgresChanges.Change<Todo>>().toMatchTypeOf<Typed>()
      expectTypeOf<Stream.Error<typeof typed>>().toEqualTypeOf<InvalidArgument>()
      const failing = channel.postgresChanges(todos, { onDecodeError: "fail" })
      expectTypeOf<Stream.Error<typeof failing>>().toEqualTypeOf<InvalidArgument | PayloadDecodeError>()
      // a plain binding still streams untyped rows
      const plain: PostgresChanges.Binding = { event: "*", schema: "public", table: "todos" }
      const untyped = channel.postgresChanges(plain)
      expectTypeOf<Extract<Stream.Success<typeof untyped>, { eventType: "INSERT" }>["new"]>().toEqualTypeOf<
        Record<string, unknown>
      >()
    }
    assert.isFunction(streams)
  })

  it("a typed binding is a plain binding on the wire and in the config", () => {
    assert.deepStrictEqual(JSON.parse(JSON.stringify(todos)), { event: "*", schema: "public", table: "todos" })
    assert.deepStrictEqual(Object.keys(todos), ["event", "schema", "table"])
    assert.isTrue(PostgresChanges.isTypedBinding(todos))
    assert.isFalse(PostgresChanges.isTypedBinding({ event: "*", schema: "public" }))
  })

  it("a numeric a double cannot hold exactly is refused, however large or small; a copied binding stays typed", () => {
    const change = (price: string) => {
      const data = { type: "INSERT", schema: "public", table: "todos", columns, record: { id: "1", price } }
      const exact = Result.getOrThrow(PostgresChanges.convertChange(data))
      return PostgresChanges.toGeneratedTypes(data, exact)
    }
    for (const price of ["1" + "0".repeat(400), "0." + "0".repeat(400) + "1", "0.1000000000000000055511151231257827"]) {
      assert.isTrue(Result.isFailure(change(price)), `${price.slice(0, 20)}… was accepted`)
    }
    for (
      const [price, expected] of [["19.90", 19.9], ["0.1", 0.1], ["-12345.678", -12345.678], [
        "1e3",
        undefined
      ]] as const
    ) {
      const result = change(price)
      if (expected === undefined) assert.isTrue(Result.isFailure(result))
      else assert.strictEqual((Result.getOrThrow(result).new as { price: number }).price, expected)
    }
    const copy = { ...todos, filter: "owner=eq.ada" }
    assert.isTrue(PostgresChanges.isTypedBinding(copy))
  })

  it.effect("int8 and numeric arrive as numbers when a number holds them exactly", () =>
    Effect.gen(function*() {
      const { channel, server } = yield* subscribed
      const changes = yield* channel.postgresChanges(todos).pipe(
        Stream.take(1),
        Stream.runCollect,
        Effect.forkChild({ startImmediately: true })
      )
      yield* Effect.yieldNow
      yield* server.emitChange({
        table: "todos",
        type: "INSERT",
        columns,
        record: { id: "9007199254740991", title: "max safe", owner: null, price: "19.90", tags: "{1,2,3}" }
      })
      const [change] = yield* Fiber.join(changes)
      assert.strictEqual(change!.eventType, "INSERT")
      const row = change!.new as Todo
      assert.strictEqual(row.id, 9007199254740991)
      assert.strictEqual(row.price, 19.9)
      assert.deepStrictEqual(row.tags, [1, 2, 3])
      assert.strictEqual(row.title, "max safe")
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("a value a number cannot hold is never rounded: the change is skipped and counted, or fails the stream", () =>
    Effect.gen(function*() {
      const { channel, server } = yield* subscribed
      const before = (yield* Metric.value(RealtimeChannel.metrics.decodeFailures)).count
      const skipping = yield* channel.postgresChanges(todos).pipe(
        Stream.take(1),
        Stream.runCollect,
        Effect.forkChild({ startImmediately: true })
      )
      const failing = yield* channel.postgresChanges(todos, { onDecodeError: "fail" }).pipe(
        Stream.runCollect,
        Effect.exit,
        Effect.forkChild({ startImmediately: true })
      )
      yield* Effect.yieldNow
      const emit = (record: Record<string, unknown>) =>
        server.emitChange({ table: "todos", type: "INSERT", columns, record })
      yield* emit({ id: "9007199254740993", title: "beyond 2^53", owner: null, price: null, tags: null })
      yield* emit({ id: "1", title: "ok", owner: null, price: "12345678901234567.5", tags: null })
      yield* emit({ id: "2", title: "in an array", owner: null, price: null, tags: "{1,9007199254740993}" })
      yield* emit({ id: "3", title: "fine", owner: "ada", price: "0.5", tags: null })
      const [delivered] = yield* Fiber.join(skipping)
      assert.strictEqual((delivered!.new as Todo).title, "fine")
      // three refused changes for the skipping stream, the first of them for the failing one (it ends)
      assert.strictEqual((yield* Metric.value(RealtimeChannel.metrics.decodeFailures)).count - before, 4)
      const exit = yield* Fiber.join(failing)
      assert.isTrue(Exit.isFailure(exit))
      const failure = Exit.isFailure(exit) ? Option.getOrThrow(Cause.findErrorOption(exit.cause)) : undefined
      assert.strictEqual(failure?._tag, "PayloadDecodeError")
      assert.include((failure as { readonly detail: string }).detail, "column id (int8) holds 9007199254740993")
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))
})
