import { expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Queue } from "effect"
import { Socket } from "effect/socket"
import { TestClock } from "effect/testing"
import * as FakeSocket from "../src/testing/FakeSocket.js"
it.effect("dbg", () =>
  Effect.gen(function*() {
    const fake = yield* FakeSocket.FakeServer
    const socket = yield* Socket.makeWebSocket("ws://fake.test/socket")
    const reader = yield* socket.reader
    const writer = yield* socket.writer
    const connection = yield* Queue.take(fake.connections)
    yield* Effect.forkChild(Effect.forever(Effect.flatMap(Queue.take(connection.sent), (f) => { console.log("echo", f); return connection.send(f) })))
    const answeredAt: Array<number> = []
    const pinger = yield* Effect.forkChild(Effect.gen(function*() {
      for (let i = 0; i < 5; i++) {
        yield* Effect.sleep("1 second")
        console.log("woke", i, yield* Clock.currentTimeMillis)
        yield* writer.write(`ping ${i}`)
        const got = yield* reader.pull
        console.log("got", got, yield* Clock.currentTimeMillis)
        answeredAt.push(yield* Clock.currentTimeMillis)
      }
    }))
    yield* Effect.yieldNow
    console.log("adjust")
    yield* TestClock.adjust("5 seconds")
    console.log("adjusted", answeredAt)
    yield* Fiber.join(pinger)
  }).pipe(Effect.provide(FakeSocket.layer)))
