/**
 * HTTP broadcast from a server-side script: no socket, just the REST endpoint (the single-event
 * endpoint for JSON and bytes, the batch endpoint for many messages). A browser client listening on
 * the socket receives them like any broadcast.
 * Run: npm exec -- tsx examples/http-broadcast.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Fiber, Layer, Stream } from "effect"
import { FetchHttpClient } from "effect/http"
import { AccessToken, HttpBroadcast } from "../src/index.js"
import { connect, Endpoint, EndpointLive } from "./support.js"

// The script's side: only HttpBroadcast, over fetch.
const script = Effect.gen(function*() {
  const http = yield* HttpBroadcast.HttpBroadcast
  yield* http.send("alerts", "deploy", { version: "1.2.3" })
  yield* http.send("alerts", "blob", new Uint8Array([0xca, 0xfe]))
  yield* http.sendBatch([
    { topic: "alerts", event: "deploy", payload: { version: "1.2.4" } },
    { topic: "alerts", event: "deploy", payload: { version: "1.2.5" } }
  ])
  yield* Effect.log("sent 4 messages over HTTP")
})

const program = Effect.gen(function*() {
  // a listener on the socket, to show the messages arrive
  const listener = yield* connect()
  const alerts = yield* listener.channel("alerts")
  const received = yield* alerts.broadcast("*").pipe(
    Stream.tap((b) =>
      Effect.log(`listener got '${b.event}': ${b.payload instanceof Uint8Array ? "bytes" : JSON.stringify(b.payload)}`)
    ),
    Stream.take(4),
    Stream.runDrain,
    Effect.forkChild
  )
  yield* alerts.subscribe

  const endpoint = yield* Endpoint
  yield* script.pipe(
    Effect.provide(
      HttpBroadcast.layer({ url: endpoint.url, apiKey: endpoint.apiKey }).pipe(
        Layer.provide([FetchHttpClient.layer, AccessToken.layerNone])
      )
    )
  )
  yield* Fiber.join(received)
}).pipe(Effect.scoped, Effect.timeout("10 seconds"), Effect.provide(EndpointLive))

NodeRuntime.runMain(program)
