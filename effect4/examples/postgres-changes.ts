/**
 * Postgres changes with a filter: only rows of `todos` where `done = false` and `owner = ada`
 * arrive, typed by a Schema. Then the same table typed by a generated `Database` type (no Schema to
 * write). The embedded server plays the database: it evaluates the filter the way Realtime does.
 * Against a real project, insert rows into `public.todos` yourself.
 * Run: npm exec -- tsx examples/postgres-changes.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Fiber, Option, Schema, Stream } from "effect"
import { PostgresChanges } from "../src/index.js"
import { connect, Endpoint, EndpointLive } from "./support.js"

const Todo = Schema.Struct({ id: Schema.String, title: Schema.String, done: Schema.Boolean, owner: Schema.String })

const binding: PostgresChanges.Binding = {
  event: "*",
  schema: "public",
  table: "todos",
  filter: PostgresChanges.Filter.make().eq("owner", "ada").eq("done", false)
}

// what `supabase gen types typescript` writes, trimmed to one table
type Database = {
  public: {
    Tables: {
      todos: {
        Row: { id: number; title: string; done: boolean; owner: string; price: number | null }
        Insert: { id?: number; title: string; done?: boolean; owner: string; price?: number | null }
        Update: { id?: number; title?: string; done?: boolean; owner?: string; price?: number | null }
        Relationships: []
      }
    }
  }
}

// schema and table checked against Database; the stream carries its todos Row
const typedTodos = PostgresChanges.typed<Database>()({ event: "INSERT", schema: "public", table: "todos" })

const program = Effect.gen(function*() {
  const client = yield* connect()
  const db = yield* client.channel("db-todos", { postgresChanges: [binding] })
  const changes = yield* db.postgresChanges(binding, Todo).pipe(
    Stream.tap((change) =>
      Effect.log(`${change.eventType} ${change.eventType === "DELETE" ? JSON.stringify(change.old) : change.new.title}`)
    ),
    Stream.take(2),
    Stream.runDrain,
    Effect.forkChild
  )
  yield* db.subscribe
  const { server } = yield* Endpoint
  if (Option.isNone(server)) {
    yield* Effect.log("listening: insert rows into public.todos with owner = 'ada' and done = false")
  } else {
    const emit = (record: typeof Todo.Type) =>
      server.value.emitChange({
        table: "todos",
        type: "INSERT",
        record,
        columns: [{ name: "id", type: "int8" }, { name: "title", type: "text" }, { name: "done", type: "bool" }, {
          name: "owner",
          type: "text"
        }]
      })
    yield* emit({ id: "1", title: "write the docs", done: false, owner: "ada" })
    yield* emit({ id: "2", title: "not ada's", done: false, owner: "bob" }) // filtered out by the server
    yield* emit({ id: "3", title: "already done", done: true, owner: "ada" }) // filtered out
    yield* emit({ id: "9007199254740993", title: "an int8 past 2^53, kept exact", done: false, owner: "ada" })
  }
  yield* Fiber.join(changes)

  // typed by the generated types: int8 and numeric arrive as the numbers the types promise
  const typed = yield* client.channel("db-typed", { postgresChanges: [typedTodos] })
  const first = yield* typed.postgresChanges(typedTodos).pipe(Stream.take(1), Stream.runCollect, Effect.forkChild)
  yield* typed.subscribe
  if (Option.isSome(server)) {
    yield* server.value.emitChange({
      table: "todos",
      type: "INSERT",
      record: { id: "42", title: "typed by Database", done: false, owner: "ada", price: "19.90" },
      columns: [{ name: "id", type: "int8" }, { name: "title", type: "text" }, { name: "done", type: "bool" }, {
        name: "owner",
        type: "text"
      }, { name: "price", type: "numeric" }]
    })
  }
  for (const change of yield* Fiber.join(first)) {
    if (change.eventType !== "INSERT") continue
    const { id, price } = change.new // typed: id is a number, price a number | null
    yield* Effect.log(`typed by Database: todos #${id} (${typeof id}) costs ${price} (${typeof price})`)
  }
}).pipe(Effect.scoped, Effect.timeout("10 seconds"), Effect.provide(EndpointLive))

NodeRuntime.runMain(program)
