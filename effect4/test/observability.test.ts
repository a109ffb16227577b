/**
 * What an app's telemetry sees: spans on the cold operations (never on the per-frame path), the
 * channels' public metrics, and a channel that logs as its topic and status, never its token.
 * Against the in-process server, under `TestClock`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Formatter, Metric, Option, Stream, Tracer } from "effect"
import type { Exit } from "effect"
import { TestClock } from "effect/testing"
import * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as RealtimeServer from "../src/testing/RealtimeServer.js"
import * as RealtimeTest from "../src/testing/RealtimeTest.js"

interface Ended {
  readonly name: string
  readonly attributes: ReadonlyMap<string, unknown>
  readonly failed: boolean
}

/** A tracer that records every span as it ends (over the default one). */
const recording = (ended: Array<Ended>) =>
  Effect.map(Effect.tracer, (inner) =>
    Tracer.make({
      context: inner.context,
      span(options) {
        const span = inner.span(options)
        const end = span.end.bind(span)
        span.end = (endTime: bigint, exit: Exit.Exit<unknown, unknown>) => {
          ended.push({ name: options.name, attributes: span.attributes, failed: exit._tag === "Failure" })
          end(endTime, exit)
        }
        return span
      }
    }))

describe("observability", () => {
  it.effect("spans on subscribe, track, untrack, removeChannel and setAuth, with the topic; none per frame", () =>
    Effect.gen(function*() {
      const ended: Array<Ended> = []
      const tracer = yield* recording(ended)
      yield* Effect.gen(function*() {
        const server = yield* RealtimeServer.RealtimeServer
        const client = yield* RealtimeClient.RealtimeClient
        const channel = yield* client.channel("room", { presence: { key: "ada" } })
        const events = yield* channel.broadcast("e").pipe(
          Stream.take(3),
          Stream.runDrain,
          Effect.forkChild({ startImmediately: true })
        )
        yield* channel.subscribe
        yield* channel.track({ online: true })
        yield* channel.untrack()
        for (let i = 0; i < 3; i++) {
          yield* server.push({ topic: "realtime:room" }, "broadcast", { type: "broadcast", event: "e", payload: { i } })
        }
        yield* Fiber.await(events)
        yield* client.setAuth("USER")
        yield* client.removeChannel(channel)
      }).pipe(Effect.withTracer(tracer))
      const names = ended.map((s) => s.name)
      for (
        const name of [
          "RealtimeChannel.subscribe",
          "RealtimeChannel.track",
          "RealtimeChannel.untrack",
          "RealtimeClient.setAuth",
          "RealtimeClient.removeChannel"
        ]
      ) assert.include(names, name)
      const subscribe = ended.find((s) => s.name === "RealtimeChannel.subscribe")!
      assert.strictEqual(subscribe.attributes.get("topic"), "realtime:room")
      assert.isFalse(subscribe.failed)
      // nothing is traced per frame: three broadcasts add no span
      assert.isFalse(names.some((name) => name.toLowerCase().includes("broadcast")))
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("a failed subscribe ends its span as failed", () =>
    Effect.gen(function*() {
      const ended: Array<Ended> = []
      const tracer = yield* recording(ended)
      const server = yield* RealtimeServer.RealtimeServer
      yield* server.rejectJoins({
        reason: "Unauthorized: You do not have permissions to read from this Channel topic: room"
      })
      const client = yield* RealtimeClient.RealtimeClient
      const channel = yield* client.channel("room", { private: true })
      yield* Effect.flip(channel.subscribe.pipe(Effect.withTracer(tracer)))
      const subscribe = ended.find((s) => s.name === "RealtimeChannel.subscribe")
      assert.isTrue(subscribe?.failed)
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("the channels' metrics are public: rejoins are counted", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      const client = yield* RealtimeClient.RealtimeClient
      const channel = yield* client.channel("room")
      yield* channel.subscribe
      const before = (yield* Metric.value(RealtimeChannel.metrics.rejoins)).count
      const subscribed = yield* channel.statusChanges.pipe(
        Stream.filter((s) => s._tag === "Subscribed" && s.rejoined),
        Stream.runHead,
        Effect.forkChild({ startImmediately: true })
      )
      yield* server.crashChannel({ topic: "realtime:room" })
      yield* TestClock.adjust("1 second")
      assert.isTrue(Option.isSome(yield* Fiber.join(subscribed)))
      assert.strictEqual((yield* Metric.value(RealtimeChannel.metrics.rejoins)).count - before, 1)
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.effect("a channel logs as its topic and status, never its token", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      const client = yield* RealtimeClient.RealtimeClient
      yield* client.setAuth(yield* server.makeToken({ role: "authenticated", claims: { sub: "ada" } }))
      const channel = yield* client.channel("room")
      yield* channel.subscribe
      const token = Option.getOrThrow(yield* client.accessToken.current)
      const json = JSON.stringify(channel)
      assert.deepStrictEqual(JSON.parse(json), {
        _id: "RealtimeChannel",
        topic: "realtime:room",
        status: {
          _tag: "Subscribed",
          rejoined: false,
          downtime: { _id: "Duration", _tag: "Millis", millis: 0 }
        }
      })
      assert.notInclude(json, token)
      assert.notInclude(Formatter.format(channel), token)
      assert.include(String(channel), "realtime:room")
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))
})
