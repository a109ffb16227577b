/**
 * A CommonJS consumer of the Effect 4 edition's packed tarball: `require` of the package's ESM build
 * (Node ≥ 22.12). Compiled by tsc under NodeNext to `require(...)` calls and run with plain `node`.
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import { RealtimeClient } from "supabase-realtime-effect4"
import { NodeRealtime } from "supabase-realtime-effect4/node"
import { RealtimeServer } from "supabase-realtime-effect4/testing"

const program = Effect.gen(function*() {
  const server = yield* RealtimeServer.makeListen()
  const text = yield* Effect.gen(function*() {
    const client = yield* RealtimeClient.RealtimeClient
    const room = yield* client.channel("consumer-cjs", { broadcast: { self: true } })
    const heard = yield* room.broadcast("ping").pipe(Stream.runHead, Effect.forkChild({ startImmediately: true }))
    yield* room.subscribe
    yield* room.send("ping", { text: "hello from require" })
    const message = yield* Fiber.join(heard)
    return message._tag === "Some" ? (message.value.payload as { text: string }).text : "nothing"
  }).pipe(Effect.scoped, Effect.provide(NodeRealtime.layer({ url: server.url, apiKey: server.apiKey })))
  console.log(`received over require: ${text}`)
}).pipe(Effect.scoped, Effect.timeout("60 seconds"))

Effect.runPromise(program).then(
  () => console.log("cjs consumer ok"),
  (error) => {
    console.error(error)
    process.exitCode = 1
  }
)
