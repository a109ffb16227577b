/**
 * A consumer of the Effect 4 edition's packed tarball, as an Effect 4 app would write it (ESM).
 * Type-checked with `skipLibCheck: false` under NodeNext and bundler resolution, compiled with tsc,
 * and run with plain `node` against the embedded server on 127.0.0.1.
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { PostgresChanges, RealtimeChannel, RealtimeClient, Reconnect } from "supabase-realtime-effect4"
import type { BrowserRealtime } from "supabase-realtime-effect4/browser"
import { NodeRealtime } from "supabase-realtime-effect4/node"
import { RealtimeServer } from "supabase-realtime-effect4/testing"

const Chat = RealtimeChannel.broadcastEvent("chat", Schema.Struct({ text: Schema.String }))

// the published types are real, not `any`
const filter = PostgresChanges.Filter.make().eq("owner", "ada").not("status", "eq", "done")
// @ts-expect-error an unknown operator is a type error
PostgresChanges.Filter.make().not("status", "bogus", 1)
const browserOptions: BrowserRealtime.Options = { url: "https://example.supabase.co", apiKey: "anon" }

// what the app does with the client
const chat = Effect.gen(function*() {
  const client = yield* RealtimeClient.RealtimeClient
  const room = yield* client.channel("consumer", {
    broadcast: { self: true, ack: true },
    postgresChanges: [{ event: "INSERT", schema: "public", table: "todos", filter }]
  })
  const heard = yield* room.broadcast(Chat).pipe(Stream.runHead, Effect.forkChild({ startImmediately: true }))
  yield* room.subscribe
  yield* room.send(Chat, { text: "hello from the tarball" })
  const message = yield* Fiber.join(heard)
  if (message._tag === "None") return yield* Effect.die(new Error("no broadcast came back"))
  return message.value.payload.text
}).pipe(Effect.scoped)

const program = Effect.gen(function*() {
  const server = yield* RealtimeServer.makeListen()
  const text = yield* chat.pipe(
    Effect.provide(NodeRealtime.layer({
      url: server.url,
      apiKey: server.apiKey,
      reconnect: { reconnect: Reconnect.exponential({ cap: "5 seconds" }) },
      heartbeat: { interval: "5 seconds" }
    }))
  )
  console.log(`received over ${new URL(server.url).hostname}: ${text}`)
  console.log(`browser options type-check: ${browserOptions.url}`)
}).pipe(Effect.scoped, Effect.timeout("60 seconds"))

Effect.runPromise(program).then(
  () => console.log("consumer ok"),
  (error) => {
    console.error(error)
    process.exitCode = 1
  }
)
