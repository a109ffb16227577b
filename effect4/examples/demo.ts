/**
 * `npm run demo`: an embedded Realtime server and three clients, live in the terminal for a few
 * seconds — broadcast chat, presence, Postgres changes with a filter (and why a filtered row does
 * not arrive), then a dropped socket and the recovery — then a summary, exit 0.
 * With SUPABASE_URL and SUPABASE_ANON_KEY set it runs against your project instead (Postgres
 * changes then need rows inserted into public.todos by you, and the socket is not dropped).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Duration, Effect, Fiber, Option, Ref, References, Schedule, Schema, Stream } from "effect"
import type { RealtimeClient } from "../src/index.js"
import { PostgresChanges, RealtimeChannel } from "../src/index.js"
import { connect, Endpoint, EndpointLive } from "./support.js"

const Chat = RealtimeChannel.broadcastEvent("chat", Schema.Struct({ from: Schema.String, text: Schema.String }))
const Member = Schema.Struct({ name: Schema.String, mood: Schema.String })
const Todo = Schema.Struct({ id: Schema.String, title: Schema.String, owner: Schema.String })
const todos: PostgresChanges.Binding = {
  event: "INSERT",
  schema: "public",
  table: "todos",
  filter: PostgresChanges.Filter.make().eq("owner", "ada")
}

const color = (code: number) => (text: string) => process.stdout.isTTY ? `\x1b[${code}m${text}\x1b[0m` : text
const dim = color(2)
const who: Record<string, (s: string) => string> = { ada: color(35), bob: color(36), eve: color(33) }
const say = (name: string, line: string) => Console.log(`${(who[name] ?? dim)(name.padEnd(4))} ${line}`)

const lines: Record<string, ReadonlyArray<string>> = {
  ada: ["hi all 👋", "the socket is typed end to end", "bye for now"],
  bob: ["hello ada", "presence updates are one event now, not leave+join", "see you"]
}

// logs a client's connection states (after the current one) for the scope
const watchConnection = (client: RealtimeClient.RealtimeClient) =>
  client.stateChanges.pipe(
    Stream.drop(1),
    Stream.runForEach((state) =>
      say(
        "eve",
        dim(
          state._tag === "Reconnecting"
            ? `socket ${state.reason}: reconnecting, attempt ${state.attempt} in ${Duration.format(state.delay)}`
            : `socket ${state._tag.toLowerCase()}`
        )
      )
    ),
    Effect.forkScoped
  )

let recovered = false

const program = Effect.gen(function*() {
  const endpoint = yield* Endpoint
  const embedded = Option.isSome(endpoint.server)
  yield* Console.log(
    dim(embedded ? `embedded Realtime server on ${endpoint.url}` : `Supabase project at ${endpoint.url}`)
  )
  const stats = { chat: yield* Ref.make(0), changes: yield* Ref.make(0), presence: yield* Ref.make(0) }

  // eve watches: presence of the room, and the todos of ada
  const eve = yield* connect()
  const room = yield* eve.channel("demo:room", { presence: { key: "eve" }, postgresChanges: [todos] })
  yield* room.presence(Member).events.pipe(
    Stream.filter((e) => e._tag !== "Sync"),
    Stream.runForEach((e) =>
      Ref.update(stats.presence, (n) => n + 1).pipe(
        Effect.andThen(
          say(
            "eve",
            e._tag === "Join"
              ? `sees ${e.key} join (${e.current[0]?.mood ?? "?"})`
              : e._tag === "Update"
              ? `sees ${e.key} change mood to ${e.current[0]?.mood ?? "?"} (one update event)`
              : e._tag === "Leave"
              ? `sees ${e.key} leave`
              : ""
          )
        )
      )
    ),
    Effect.forkScoped
  )
  yield* room.postgresChanges(todos, Todo).pipe(
    Stream.runForEach((change) =>
      Ref.update(stats.changes, (n) => n + 1).pipe(
        Effect.andThen(say("eve", `db ${change.eventType} todos #${change.new.id}: "${change.new.title}"`))
      )
    ),
    Effect.forkScoped
  )
  yield* room.subscribe
  yield* say("eve", dim(`subscribed (${(yield* room.status)._tag})`))

  // ada and bob chat and show presence
  const member = (name: "ada" | "bob") =>
    Effect.gen(function*() {
      const client = yield* connect()
      const channel = yield* client.channel("demo:room", { presence: { key: name }, postgresChanges: [todos] })
      yield* channel.broadcast(Chat).pipe(
        Stream.runForEach(({ payload }) =>
          Ref.update(stats.chat, (n) => n + 1).pipe(
            Effect.andThen(say(name, dim(`← ${payload.from}: ${payload.text}`)))
          )
        ),
        Effect.forkScoped
      )
      yield* channel.subscribe
      yield* channel.track({ name, mood: "curious" })
      return channel
    })
  const ada = yield* member("ada")
  const bob = yield* member("bob")

  const chat = (name: "ada" | "bob", channel: RealtimeChannel.RealtimeChannel) =>
    Effect.forEach(lines[name]!, (text) =>
      say(name, `→ ${text}`).pipe(
        Effect.andThen(channel.send(Chat, { from: name, text })),
        Effect.andThen(Effect.sleep("600 millis"))
      ), { discard: true })

  const database = Effect.gen(function*() {
    if (Option.isNone(endpoint.server)) return
    const server = endpoint.server.value
    const rows = [
      { id: "1", title: "try supabase-realtime-effect", owner: "ada" },
      { id: "2", title: "bob's chores (filtered out by owner=eq.ada)", owner: "bob" },
      { id: "3", title: "ship it", owner: "ada" }
    ]
    yield* Effect.forEach(rows, (record) =>
      server.emitChange({ table: "todos", type: "INSERT", record }).pipe(
        Effect.tap((channels) =>
          channels > 0 ? Effect.void : say(
            "db",
            dim(
              `todos #${record.id} (owner ${record.owner}) reached no one: every binding filters owner=eq.ada, and the server applies the filter before sending`
            )
          )
        ),
        Effect.andThen(Effect.sleep("700 millis"))
      ), { discard: true })
  })

  const talking = yield* Effect.all([chat("ada", ada), Effect.delay(chat("bob", bob), "300 millis"), database], {
    concurrency: "unbounded"
  }).pipe(Effect.forkChild)
  yield* Effect.sleep("1 second")
  yield* ada.track({ name: "ada", mood: "delighted" })
  yield* Fiber.join(talking)
  yield* Effect.sleep("500 millis")

  // the server drops every socket without a close frame; the clients reconnect on their
  // schedule (realtime-js's 1 s, 2 s, 5 s, 10 s), rejoin, re-track their presence, and eve gets
  // the next row as if nothing happened
  if (Option.isSome(endpoint.server)) {
    const server = endpoint.server.value
    yield* watchConnection(eve)
    const rejoined = yield* room.statusChanges.pipe(
      Stream.dropWhile((status) => status._tag === "Subscribed"),
      Stream.filter((status) => status._tag === "Subscribed"),
      Stream.take(1),
      Stream.runDrain,
      Effect.timed,
      Effect.forkChild
    )
    const dropped = yield* server.dropConnection({ abrupt: true })
    yield* Console.log(dim(`server: dropped ${dropped} sockets (no close frame: 1006)`))
    const [took] = yield* Fiber.join(rejoined)
    yield* say("eve", dim(`channel subscribed again, ${Math.round(Duration.toMillis(took))} ms after the drop`))
    recovered = true
    // presence comes back as each client rejoins and tracks its meta again
    yield* room.presence(Member).changes.pipe(
      Stream.filter((state) => state.get("ada")?.[0]?.mood === "delighted" && state.has("bob")),
      Stream.take(1),
      Stream.runDrain
    )
    const before = yield* Ref.get(stats.changes)
    yield* server.emitChange({
      table: "todos",
      type: "INSERT",
      record: { id: "4", title: "after the reconnect", owner: "ada" }
    })
    yield* Ref.get(stats.changes).pipe(
      Effect.repeat({ until: (n) => n > before, schedule: Schedule.spaced("50 millis") })
    )
  }

  const state = yield* room.presence(Member).state
  yield* Console.log(dim("—".repeat(60)))
  yield* Console.log(
    `present: ${[...state.entries()].map(([key, metas]) => `${key} (${metas[0]?.mood})`).join(", ")}`
  )
  yield* Console.log(
    `delivered: ${yield* Ref.get(stats.chat)} chat messages, ${yield* Ref.get(
      stats.presence
    )} presence events, ${yield* Ref
      .get(stats.changes)} postgres changes`
  )
  if (Option.isSome(endpoint.server)) {
    yield* Console.log(
      `filtered: todos #2 is bob's, and every binding asked for owner=eq.ada, so the server sent it to no one`
    )
    yield* Console.log(
      recovered
        ? "recovered: after the dropped socket every client reconnected and rejoined, presence was re-tracked and todos #4 arrived"
        : "not recovered"
    )
  }
}).pipe(
  Effect.scoped,
  Effect.timeout(Duration.seconds(30)),
  Effect.provide(EndpointLive),
  // the SDK logs each reconnect as a warning; the demo narrates them itself, so only errors are logged
  Effect.provideService(References.MinimumLogLevel, "Error")
)

NodeRuntime.runMain(program)
