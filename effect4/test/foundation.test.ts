/**
 * The foundation modules of the Effect 4 edition: the reconnect schedules (same delays as the
 * Effect 3 edition), the hand-stepped backoff, the inbox streams, the access token source and the
 * errors (the wire Schemas are in `Protocol.test.ts`).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { TestClock } from "effect/testing"
import * as AccessToken from "../src/AccessToken.js"
import * as Heartbeat from "../src/Heartbeat.js"
import * as Backoff from "../src/internal/backoff.js"
import * as DescribeIssue from "../src/internal/describe.js"
import { BatchedFeed, batching, Inbox, inboxStream } from "../src/internal/inbox.js"
import { Waiter } from "../src/internal/waiter.js"
import * as Network from "../src/Network.js"
import * as RealtimeError from "../src/RealtimeError.js"
import * as Reconnect from "../src/Reconnect.js"

/** The delays a schedule would wait before its first `n` recurrences (fewer when it ends sooner). */
const delaysOf = (schedule: Schedule.Schedule<unknown, unknown>, n: number) =>
  Effect.gen(function*() {
    const step = yield* Schedule.toStep(schedule)
    const delays: Array<number> = []
    let now = 0
    while (delays.length < n) {
      const result = yield* Effect.result(step(now, undefined))
      if (Result.isFailure(result)) break
      const delay = Duration.toMillis(result.success[1])
      delays.push(delay)
      now += delay
    }
    return delays
  })

describe("Reconnect", () => {
  it.effect("realtimeJs: 1 s, 2 s, 5 s, 10 s, then 10 s forever", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* delaysOf(Reconnect.realtimeJs, 7), [1000, 2000, 5000, 10000, 10000, 10000, 10000])
      assert.strictEqual(Reconnect.defaults.reconnect, Reconnect.realtimeJs)
      assert.strictEqual(Reconnect.defaults.rejoin, Reconnect.realtimeJs)
    }))

  it.effect("exponential doubles from the base and stops growing at the cap", () =>
    Effect.gen(function*() {
      const delays = yield* delaysOf(Reconnect.exponential({ jitter: false, cap: "10 seconds" }), 7)
      assert.deepStrictEqual(delays, [1000, 2000, 4000, 8000, 10000, 10000, 10000])
      const fast = yield* delaysOf(Reconnect.exponential({ jitter: false, base: "100 millis", factor: 3 }), 3)
      assert.deepStrictEqual(fast, [100, 300, 900])
      const capped = yield* delaysOf(Reconnect.exponential({ jitter: false }), 7)
      assert.deepStrictEqual(capped, [1000, 2000, 4000, 8000, 16000, 30000, 30000])
    }))

  it.effect("exponential jitter keeps each delay within 0.8 to 1.2 of the plain one, and varies", () =>
    Effect.gen(function*() {
      const plain = yield* delaysOf(Reconnect.exponential({ jitter: false }), 8)
      const jittered = yield* delaysOf(Reconnect.exponential(), 8)
      assert.strictEqual(jittered.length, 8)
      jittered.forEach((delay, i) => {
        assert.isAtLeast(delay, plain[i]! * 0.8)
        assert.isAtMost(delay, plain[i]! * 1.2)
      })
      assert.isAbove(new Set(jittered.map((d, i) => d / plain[i]!)).size, 1, "the factor is not constant")
    }))

  it.effect("exponential maxAttempts ends the schedule after that many delays", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* delaysOf(Reconnect.exponential({ jitter: false, maxAttempts: 3 }), 10), [
        1000,
        2000,
        4000
      ])
      assert.deepStrictEqual(yield* delaysOf(Reconnect.exponential({ jitter: false, maxAttempts: 0 }), 10), [])
    }))

  it.effect("layer merges the given schedules over the defaults", () =>
    Effect.gen(function*() {
      const custom = Schedule.spaced("7 seconds")
      const policy = yield* Effect.provide(
        Reconnect.Reconnect.useSync((r) => r),
        Reconnect.layer({ reconnect: custom })
      )
      assert.strictEqual(policy.reconnect, custom)
      assert.strictEqual(policy.rejoin, Reconnect.realtimeJs)
    }))
})

describe("policy layers", () => {
  it.effect("built below an existing client, a policy layer warns that it cannot reach it", () =>
    Effect.gen(function*() {
      const warnings: Array<string> = []
      const logger = Logger.make(({ message }) => {
        warnings.push(String(Array.isArray(message) ? message[0] : message))
      })
      const build = Effect.all([
        Reconnect.Reconnect.useSync((r) => r),
        Heartbeat.Heartbeat.useSync((h) => h)
      ]).pipe(Effect.provide([Reconnect.layer({}), Heartbeat.layer({ interval: "1 second" })]))
      yield* build.pipe(Effect.provide(Logger.layer([logger])))
      assert.deepStrictEqual(warnings, [])
      const [, heartbeat] = yield* build.pipe(
        Effect.provideService(Context.Service<unknown>("supabase-realtime-effect/Transport"), {}),
        Effect.provide(Logger.layer([logger]))
      )
      assert.strictEqual(Duration.toMillis(heartbeat.interval), 1000)
      assert.isTrue(warnings.some((w) => w.startsWith("Reconnect.layer was provided below a RealtimeClient")))
      assert.isTrue(warnings.some((w) => w.startsWith("Heartbeat.layer was provided below a RealtimeClient")))
    }))
})

describe("Heartbeat", () => {
  it("make: the timeout defaults to the interval", () => {
    const policy = Heartbeat.make({ interval: "5 seconds" })
    assert.strictEqual(Duration.toMillis(policy.interval), 5000)
    assert.strictEqual(Duration.toMillis(policy.timeout), 5000)
    assert.strictEqual(Duration.toMillis(Heartbeat.make({}).interval), 25000)
    assert.strictEqual(Heartbeat.HeartbeatStatus.Sent({ ref: "1" })._tag, "Sent")
  })
})

describe("Backoff", () => {
  it.effect("steps the schedule without sleeping, and starts over on reset", () =>
    Effect.gen(function*() {
      const backoff = Backoff.make(Reconnect.realtimeJs)
      const millis = (o: Option.Option<Duration.Duration>) => Option.map(o, Duration.toMillis)
      assert.deepStrictEqual(millis(yield* backoff.next(undefined)), Option.some(1000))
      assert.deepStrictEqual(millis(yield* backoff.next(undefined)), Option.some(2000))
      assert.deepStrictEqual(millis(yield* backoff.next(undefined)), Option.some(5000))
      backoff.reset()
      assert.deepStrictEqual(millis(yield* backoff.next(undefined)), Option.some(1000))
      assert.deepStrictEqual(millis(yield* backoff.next(undefined)), Option.some(2000))
    }))

  it.effect("None once the schedule is over; a reset starts it again", () =>
    Effect.gen(function*() {
      const backoff = Backoff.make(Reconnect.exponential({ jitter: false, maxAttempts: 2 }))
      const millis = (o: Option.Option<Duration.Duration>) => Option.map(o, Duration.toMillis)
      assert.deepStrictEqual(millis(yield* backoff.next("e1")), Option.some(1000))
      assert.deepStrictEqual(millis(yield* backoff.next("e2")), Option.some(2000))
      assert.isTrue(Option.isNone(yield* backoff.next("e3")))
      assert.isTrue(Option.isNone(yield* backoff.next("e4")))
      backoff.reset()
      assert.deepStrictEqual(millis(yield* backoff.next("e5")), Option.some(1000))
    }))
})

describe("Waiter", () => {
  it.effect("a fiber waits for the outcome; a settled waiter answers at once", () =>
    Effect.gen(function*() {
      const waiter = new Waiter<number, string>()
      const fiber = yield* Effect.forkChild(waiter.await(() => {}))
      yield* Effect.yieldNow
      assert.isTrue(waiter.settle(Exit.succeed(1)))
      assert.isFalse(waiter.settle(Exit.succeed(2)))
      assert.strictEqual(yield* Fiber.join(fiber), 1)
      assert.strictEqual(yield* waiter.await(() => {}), 1)
      const failed = new Waiter<number, string>()
      failed.settle(Exit.fail("no"))
      assert.strictEqual(yield* Effect.flip(failed.await(() => {})), "no")
    }))

  it.effect("an interrupted wait runs forget; listen gets the outcome", () =>
    Effect.gen(function*() {
      const waiter = new Waiter<number, never>()
      let forgotten = 0
      const fiber = yield* Effect.forkChild(waiter.await(() => forgotten++))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(forgotten, 1)
      const seen: Array<unknown> = []
      waiter.listen((exit) => seen.push(exit))
      waiter.settle(Exit.succeed(3))
      assert.strictEqual(seen.length, 1)
      assert.isTrue(Exit.isSuccess(seen[0] as Exit.Exit<number>))
    }))
})

describe("inbox", () => {
  it.effect("delivers in order, in batches, and ends once drained", () =>
    Effect.gen(function*() {
      let inbox: Inbox<number> | undefined
      let unregistered = 0
      const stream = inboxStream<number>(1024, (i) => {
        inbox = i
        return () => unregistered++
      })
      const fiber = yield* Effect.forkChild(Stream.runCollect(stream))
      yield* Effect.yieldNow
      assert.isDefined(inbox)
      const listener = new BatchedFeed(inbox!, () => assert.fail("nothing is dropped"))
      for (let i = 0; i < 10; i++) listener.unsafeOffer(i)
      yield* Effect.yieldNow
      for (let i = 10; i < 200; i++) listener.unsafeOffer(i)
      listener.end()
      const collected = yield* Fiber.join(fiber)
      assert.deepStrictEqual(collected, Array.from({ length: 200 }, (_, i) => i))
      assert.strictEqual(unregistered, 1)
    }))

  it.effect("a stream ended early disconnects its source; a lagging consumer loses the newest events", () =>
    Effect.gen(function*() {
      let inbox: Inbox<string> | undefined
      let unregistered = 0
      const stream = inboxStream<string>(2, (i) => {
        inbox = i
        return () => unregistered++
      })
      const fiber = yield* Effect.forkChild(Stream.runCollect(Stream.take(stream, 2)))
      yield* Effect.yieldNow
      assert.isTrue(inbox!.offer("a", true))
      assert.isTrue(inbox!.offer("b", true))
      assert.deepStrictEqual(yield* Fiber.join(fiber), ["a", "b"])
      assert.strictEqual(unregistered, 1)

      // a batch queues whole; a consumer lagging by `capacity` offered events loses the newest
      const inbox2 = new Inbox<number>(2)
      for (let k = 0; k < 5; k++) assert.isTrue(inbox2.offer(k, false))
      batching.batch++ // the next batch: the five queued have been offered
      assert.isFalse(inbox2.offer(5, false))
      assert.deepStrictEqual(yield* inbox2.pull, [0, 1, 2, 3, 4])
      assert.isTrue(inbox2.offer(6, false))
      inbox2.end()
      assert.isFalse(inbox2.offer(7, false))
      assert.deepStrictEqual(yield* inbox2.pull, [6])
      assert.isTrue(Cause.isDone(yield* Effect.flip(inbox2.pull)))
    }))

  it.effect("an interrupted consumer disconnects its source", () =>
    Effect.gen(function*() {
      let unregistered = 0
      const stream = inboxStream<number>(8, () => () => unregistered++)
      const fiber = yield* Effect.forkChild(Stream.runDrain(stream))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(unregistered, 1)
    }))
})

describe("AccessToken", () => {
  it.effect("concurrent refreshes share one fetch", () =>
    Effect.gen(function*() {
      let fetches = 0
      const tokens = yield* AccessToken.make({
        fetch: Effect.sync(() => ++fetches).pipe(
          Effect.delay("1 second"),
          Effect.map((n) => `token-${n}`)
        )
      })
      assert.isTrue(AccessToken.isAccessToken(tokens))
      assert.isFalse(AccessToken.isAccessToken({ refresh: tokens.refresh }))
      const fibers = yield* Effect.forEach([1, 2, 3], () => Effect.forkChild(tokens.refresh))
      yield* Effect.yieldNow
      yield* TestClock.adjust("1 second")
      const results = yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(results, [Option.some("token-1"), Option.some("token-1"), Option.some("token-1")])
      assert.strictEqual(fetches, 1)
      assert.deepStrictEqual(yield* tokens.current, Option.some("token-1"))
      // the next refresh fetches again
      const next = yield* Effect.forkChild(tokens.refresh)
      yield* Effect.yieldNow
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* Fiber.join(next), Option.some("token-2"))
      assert.strictEqual(fetches, 2)
    }))

  it.effect("a fetch that never answers fails after the timeout; the next refresh calls the source again", () =>
    Effect.gen(function*() {
      let calls = 0
      const tokens = yield* AccessToken.make({
        initial: "kept",
        fetch: Effect.suspend(() => ++calls === 1 ? Effect.never : Effect.succeed("fresh")),
        timeout: "5 seconds"
      })
      const hung = yield* Effect.forkChild(Effect.flip(tokens.refresh))
      yield* Effect.yieldNow
      yield* TestClock.adjust("5 seconds")
      const error = yield* Fiber.join(hung)
      assert.strictEqual(error._tag, "AccessTokenError")
      assert.strictEqual(error.message, "access token source failed: no token within 5s")
      assert.deepStrictEqual(yield* tokens.current, Option.some("kept"))
      assert.deepStrictEqual(yield* tokens.refresh, Option.some("fresh"))
      assert.strictEqual(calls, 2)
    }))

  it.effect("a refresh asked from an uninterruptible region still times out; the next refresh calls the source again", () =>
    Effect.gen(function*() {
      let calls = 0
      const tokens = yield* AccessToken.make({
        initial: "kept",
        fetch: Effect.suspend(() => ++calls === 1 ? Effect.never : Effect.succeed("fresh")),
        timeout: "5 seconds"
      })
      // the fetch runs in a fiber of its own, interruptible whoever asked for it
      const hung = yield* Effect.forkChild(Effect.flip(Effect.uninterruptible(tokens.refresh)))
      yield* Effect.yieldNow
      yield* TestClock.adjust("5 seconds")
      const error = yield* Fiber.join(hung)
      assert.strictEqual(error.message, "access token source failed: no token within 5s")
      assert.deepStrictEqual(yield* tokens.refresh, Option.some("fresh"))
      assert.strictEqual(calls, 2)
    }))

  it.effect("a fetch in flight when the layer's scope closes is interrupted: it does not outlive its layer", () =>
    Effect.gen(function*() {
      let interrupted = false
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        AccessToken.layerEffect(Effect.onInterrupt(Effect.never, () =>
          Effect.sync(() => {
            interrupted = true
          }))),
        scope
      )
      const tokens = Context.get(context, AccessToken.AccessToken)
      const waiting = yield* Effect.forkChild(tokens.refresh)
      yield* Effect.yieldNow
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(interrupted)
      assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(waiting)))
    }))

  it.effect("a token set by hand while a fetch is in flight wins over the fetch's result", () =>
    Effect.gen(function*() {
      const tokens = yield* AccessToken.make({
        initial: "first",
        fetch: Effect.succeed("fetched").pipe(Effect.delay("1 second"))
      })
      const refreshing = yield* Effect.forkChild(tokens.refresh)
      yield* Effect.yieldNow
      yield* tokens.set("manual")
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* Fiber.join(refreshing), Option.some("manual"))
      assert.deepStrictEqual(yield* tokens.current, Option.some("manual"))
      // a later refresh replaces it
      const later = yield* Effect.forkChild(tokens.refresh)
      yield* Effect.yieldNow
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* Fiber.join(later), Option.some("fetched"))
    }))

  it.effect("a failing source fails with AccessTokenError and keeps the last token; changes emit changes", () =>
    Effect.gen(function*() {
      const failing = yield* AccessToken.make({ initial: "kept", fetch: Effect.fail("auth down") })
      const error = yield* Effect.flip(failing.refresh)
      assert.strictEqual(error._tag, "AccessTokenError")
      assert.strictEqual(error.message, "access token source failed: auth down")
      assert.deepStrictEqual(yield* failing.current, Option.some("kept"))
      const dying = yield* AccessToken.make({ fetch: Effect.die(new Error("boom")) })
      assert.strictEqual((yield* Effect.flip(dying.refresh))._tag, "AccessTokenError")

      const manual = yield* AccessToken.make({ initial: "a" })
      const seen = yield* Effect.forkChild(Stream.runCollect(Stream.take(manual.changes, 3)))
      yield* Effect.yieldNow
      yield* manual.set("a")
      yield* manual.set("b")
      yield* manual.set(null)
      assert.deepStrictEqual(yield* Fiber.join(seen), [Option.some("a"), Option.some("b"), Option.none()])
      assert.deepStrictEqual(yield* manual.refresh, Option.none())
    }))

  it.effect("layerFrom: none, static, or an Effect", () =>
    Effect.gen(function*() {
      const none = yield* Effect.provide(AccessToken.AccessToken.useSync((t) => t), AccessToken.layerFrom(undefined))
      assert.deepStrictEqual(yield* none.refresh, Option.none())
      const fixed = yield* Effect.provide(AccessToken.AccessToken.useSync((t) => t), AccessToken.layerFrom("jwt"))
      assert.deepStrictEqual(yield* fixed.refresh, Option.some("jwt"))
      const fetched = yield* Effect.provide(
        AccessToken.AccessToken.useSync((t) => t),
        AccessToken.layerFrom(Effect.succeed("fresh"))
      )
      assert.deepStrictEqual(yield* fetched.current, Option.none())
      assert.deepStrictEqual(yield* fetched.refresh, Option.some("fresh"))
    }))
})

describe("Network", () => {
  it.effect("makeManual: signals only on changes, and resumes", () =>
    Effect.gen(function*() {
      const manual = Network.makeManual(true)
      const seen = yield* Effect.forkChild(Stream.runCollect(Stream.take(manual.network.signals, 3)))
      yield* Effect.yieldNow
      manual.set(true)
      manual.set(false)
      manual.resume()
      manual.set(true)
      assert.deepStrictEqual((yield* Fiber.join(seen)).map((s) => s._tag), ["Offline", "Resumed", "Online"])
      assert.isTrue(yield* manual.network.isOnline)
      assert.isTrue(manual.network.unsafeIsOnline())
    }))
})

describe("RealtimeError", () => {
  it("messages, tags and guards as the Effect 3 edition's", () => {
    const closed = new RealtimeError.SocketClosed({ reason: "going away", code: 1001 })
    assert.strictEqual(closed._tag, "SocketClosed")
    assert.strictEqual(closed.message, "socket closed (1001): going away")
    assert.strictEqual(new RealtimeError.SocketClosed({ reason: "x" }).message, "socket closed: x")
    assert.strictEqual(
      new RealtimeError.PushTimeout({ topic: "t", event: "e", timeoutMillis: 10 }).message,
      "no reply to 'e' on 't' within 10 ms"
    )
    assert.isTrue(RealtimeError.isRealtimeError(closed))
    assert.isFalse(RealtimeError.isRealtimeError(new Error("x")))
    const rejected = RealtimeError.joinRejected("realtime:room", { reason: "Unauthorized: no access" })
    assert.strictEqual(rejected._tag, "JoinRejected")
    assert.strictEqual(rejected._tag === "JoinRejected" && rejected.code, "Unauthorized")
    assert.strictEqual(
      RealtimeError.joinRejected("r", { reason: "InvalidJWTToken: Token has expired 3 seconds ago" })._tag,
      "TokenExpired"
    )
    const push = new RealtimeError.PushRejected({ topic: "t", event: "e", response: { reason: "no" } })
    assert.strictEqual(push.message, `'e' on 't' rejected: {"reason":"no"}`)
    assert.deepStrictEqual(push.toJSON(), { _tag: "PushRejected", topic: "t", event: "e", response: `{"reason":"no"}` })
  })

  it("payloadDecodeError describes the issue bounded, without recursion, and keeps it hidden", () => {
    let deep: unknown = 1
    for (let i = 0; i < 10_000; i++) deep = { a: deep }
    const schema = Schema.Struct({ n: Schema.Number, s: Schema.String })
    const result = Schema.decodeUnknownResult(schema)({ n: deep, s: 1 }, { errors: "all", reportInput: true })
    assert.isTrue(Result.isFailure(result))
    if (Result.isFailure(result)) {
      const error = RealtimeError.payloadDecodeError("room", "e", result.failure.issue)
      assert.strictEqual(error._tag, "PayloadDecodeError")
      assert.include(error.detail, `["n"]: Expected number, actual {"a":`)
      assert.include(error.detail, `["s"]: Expected string, actual 1`)
      assert.isAtMost(error.detail.length, 1000)
      assert.strictEqual(error.issue, result.failure.issue)
      assert.notInclude(Object.keys(error), "issue")
      assert.include(error.message, "payload of 'e' on 'room' does not match its schema: ")
    }
    const missing = Schema.decodeUnknownResult(schema)({ n: 1 })
    if (Result.isFailure(missing)) {
      assert.strictEqual(DescribeIssue.describeIssue(missing.failure.issue), `["s"]: is missing`)
    }
    const text = RealtimeError.payloadDecodeError("room", "e", "not JSON")
    assert.strictEqual(text.detail, "not JSON")
    assert.isUndefined(text.issue)
  })
})
