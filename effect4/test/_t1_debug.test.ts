import { describe, it } from "@effect/vitest"
import { Clock, Effect, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as RealtimeServer from "../src/testing/RealtimeServer.js"
import * as RealtimeTest from "../src/testing/RealtimeTest.js"

const tenMinuteToken = Effect.map(
  Clock.currentTimeMillis,
  (now) => RealtimeServer.signToken({ role: "authenticated", exp: Math.floor(now / 1000) + 600 })
)
describe("dbg", () => {
  it.effect("token", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      const client = yield* RealtimeClient.RealtimeClient
      const room = yield* client.channel("private-room", { private: true })
      yield* room.statusChanges.pipe(
        Stream.runForEach((s) =>
          Effect.clockWith((c) =>
            Effect.sync(() => console.log("status", c.currentTimeMillisUnsafe(), JSON.stringify(s)))
          )
        ),
        Effect.forkChild({ startImmediately: true })
      )
      yield* room.subscribe
      for (let i = 0; i < 120; i++) yield* TestClock.adjust("1 second")
      const st = yield* server.state
      for (const c of st.connections.concat(st.closedConnections)) {
        console.log(
          c.id,
          JSON.stringify(
            st.received(c.id).map((f) => [f.at, f.event, f.joinRef ?? "", JSON.stringify(f.payload).slice(0, 80)])
          )
        )
        console.log(
          "SENT",
          JSON.stringify(st.sent(c.id).map((f) => [f.at, f.event, JSON.stringify(f.payload).slice(0, 120)]))
        )
      }
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))
})
