/**
 * The Transport over the fake socket: its URL and options, requests and pushes, the buffer,
 * routing and bad frames, disconnect and scope.
 */
import { assert, describe, it } from "@effect/vitest"
import {
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  HashMap,
  Logger,
  Option,
  Queue,
  Redacted,
  Ref,
  Supervisor,
  TestClock
} from "effect"
import * as Heartbeat from "../src/Heartbeat.js"
import * as FakeSocket from "../src/testing/FakeSocket.js"
import * as Transport from "../src/Transport.js"
import { awaitState, connected, counter, nextFrame, reply, setup } from "./support/transport.js"

describe("Transport", () => {
  describe("connectionUrl", () => {
    it("builds <endpoint>/websocket?apikey&params&log_level&vsn", () => {
      assert.deepStrictEqual(
        Transport.connectionUrl({ url: "wss://proj.supabase.co/realtime/v1", apiKey: "ANON", logLevel: "info" }),
        Either.right("wss://proj.supabase.co/realtime/v1/websocket?apikey=ANON&log_level=info&vsn=2.0.0")
      )
      assert.deepStrictEqual(
        Transport.connectionUrl({ url: "ws://localhost:4000/socket/", apiKey: "k", vsn: "1.0.0", params: { a: "b" } }),
        Either.right("ws://localhost:4000/socket/websocket?apikey=k&a=b&vsn=1.0.0")
      )
    })

    it("refuses bad URLs and blank keys with InvalidArgument, never echoing a secret", () => {
      for (const url of ["not a url", "wss://x.supabase.co/realtime/v1?apikey=SECRET", "ftp://x", "SECRET"]) {
        const bad = Transport.connectionUrl({ url, apiKey: "k" })
        assert.isTrue(Either.isLeft(bad), url)
        if (Either.isLeft(bad)) {
          assert.strictEqual(bad.left._tag, "InvalidArgument")
          assert.notInclude(bad.left.message, "SECRET")
        }
      }
      for (const apiKey of ["", "   ", Redacted.make(""), Redacted.make("\n")]) {
        const bad = Transport.connectionUrl({ url: "wss://x.supabase.co/realtime/v1", apiKey })
        assert.isTrue(Either.isLeft(bad) && bad.left._tag === "InvalidArgument" && bad.left.message.includes("apiKey"))
      }
    })

    it.scoped("make fails with InvalidArgument on a bad URL or option", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(setup({ url: "::" }))
        assert.strictEqual(error._tag, "InvalidArgument")
        const vsn = yield* Effect.flip(setup({ vsn: "3.0.0" as never }))
        assert.include(vsn.message, "3.0.0")
        const buffer = yield* Effect.flip(setup({ bufferSize: -1 }))
        assert.include(buffer.message, "bufferSize")
        assert.include((yield* Effect.flip(setup({ maxFrameBytes: 0 }))).message, "maxFrameBytes")
        const blank = yield* Effect.flip(setup({ apiKey: " " }))
        assert.include(blank.message, "apiKey")
      }))
  })

  it.scoped("is a Transport (TypeId)", () =>
    Effect.gen(function*() {
      const { transport } = yield* setup()
      assert.isTrue(Transport.isTransport(transport))
      assert.isFalse(Transport.isTransport({ endpoint: "x" }))
    }))

  it.scoped("does not connect until asked; connects to the URL with the apikey", () =>
    Effect.gen(function*() {
      const { server, transport } = yield* setup()
      assert.strictEqual((yield* transport.state)._tag, "Closed")
      assert.strictEqual(yield* Ref.get(server.attempts), 0)
      yield* transport.connect
      yield* transport.connect // idempotent
      const connection = yield* Queue.take(server.connections)
      assert.strictEqual(connection.url, "ws://realtime.test/socket/websocket?apikey=anon-key&vsn=2.0.0")
      yield* awaitState(transport, "Open")
      assert.strictEqual(yield* Ref.get(server.attempts), 1)
    }))

  it.scoped("request resolves with the phx_reply of its ref; replies to unknown refs are ignored", () =>
    Effect.gen(function*() {
      const { connection, transport } = yield* connected()
      const ref = transport.makeRef()
      const fiber = yield* transport.request({ joinRef: ref, ref, topic: "realtime:a", event: "phx_join", payload: {} })
        .pipe(Effect.fork)
      const frame = yield* nextFrame(connection)
      assert.deepStrictEqual(frame, [ref, ref, "realtime:a", "phx_join", {}])
      yield* connection.send(JSON.stringify([null, "999", "realtime:a", "phx_reply", { status: "ok", response: {} }]))
      yield* reply(connection, frame, "ok", { postgres_changes: [] })
      const result = yield* Fiber.join(fiber)
      assert.deepStrictEqual(result, { status: "ok", response: { postgres_changes: [] } })
    }))

  it.scoped("unsafeRequest calls back once with the reply, or SocketClosed when not open", () =>
    Effect.gen(function*() {
      const { server, transport } = yield* setup()
      const exits: Array<Exit.Exit<Transport.Reply, unknown>> = []
      transport.unsafeRequest(
        { joinRef: null, ref: "1", topic: "realtime:a", event: "x", payload: {} },
        Duration.seconds(1),
        (exit) => exits.push(exit)
      )
      assert.strictEqual(exits.length, 1)
      assert.isTrue(Exit.isFailure(exits[0]!))
      yield* transport.connect
      const connection = yield* Queue.take(server.connections)
      yield* awaitState(transport, "Open")
      const ref = transport.makeRef()
      const done = yield* Deferred.make<Exit.Exit<Transport.Reply, unknown>>()
      transport.unsafeRequest(
        { joinRef: null, ref, topic: "realtime:a", event: "x", payload: {} },
        Duration.seconds(1),
        (exit) => Deferred.unsafeDone(done, Exit.succeed(exit))
      )
      yield* reply(connection, yield* nextFrame(connection), "ok", { n: 1 })
      const exit = yield* Deferred.await(done)
      assert.deepStrictEqual(exit, Exit.succeed({ status: "ok", response: { n: 1 } }))
    }))

  it.scoped("a push without reply fails with PushTimeout after the timeout", () =>
    Effect.gen(function*() {
      const { transport } = yield* connected({ timeout: "3 seconds" })
      const ref = transport.makeRef()
      const fiber = yield* transport.request({ joinRef: null, ref, topic: "realtime:a", event: "x", payload: {} }).pipe(
        Effect.flip,
        Effect.fork
      )
      yield* TestClock.adjust("2999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "PushTimeout")
      if (error._tag === "PushTimeout") {
        assert.deepStrictEqual([error.topic, error.event, error.timeoutMillis], ["realtime:a", "x", 3000])
      }
    }))

  it.scoped("pushes made while disconnected are buffered and flushed in order on open", () =>
    Effect.gen(function*() {
      const { server, transport } = yield* setup()
      const fibers = yield* Effect.forEach(
        [1, 2, 3],
        (n) => transport.push({ joinRef: null, ref: String(n), topic: "realtime:a", event: `e${n}`, payload: {} }),
        { concurrency: "unbounded" }
      ).pipe(Effect.fork)
      yield* Effect.yieldNow()
      assert.isTrue(Option.isNone(yield* Fiber.poll(fibers)), "push completes only once written")
      yield* transport.connect
      const connection = yield* Queue.take(server.connections)
      const events = []
      for (let i = 0; i < 3; i++) events.push((yield* nextFrame(connection))[3])
      assert.deepStrictEqual(events, ["e1", "e2", "e3"])
      yield* Fiber.join(fibers)
    }))

  it.scoped("a full buffer fails the push with BufferFull; nothing is dropped silently", () =>
    Effect.gen(function*() {
      const { server, transport } = yield* setup({ bufferSize: 2 })
      const push = (n: number) =>
        transport.push({ joinRef: null, ref: String(n), topic: "realtime:a", event: `e${n}`, payload: {} })
      const first = yield* Effect.fork(push(1))
      const second = yield* Effect.fork(push(2))
      yield* Effect.yieldNow()
      const error = yield* Effect.flip(push(3))
      assert.strictEqual(error._tag, "BufferFull")
      assert.include(error.message, "e3")
      yield* transport.connect
      const connection = yield* Queue.take(server.connections)
      assert.deepStrictEqual((yield* nextFrame(connection))[3], "e1")
      assert.deepStrictEqual((yield* nextFrame(connection))[3], "e2")
      yield* Fiber.join(first)
      yield* Fiber.join(second)
    }))

  it.scoped("a request that times out while buffered is never sent", () =>
    Effect.gen(function*() {
      const { server, transport } = yield* setup({ timeout: "1 second" })
      const error = yield* transport.request({
        joinRef: null,
        ref: "7",
        topic: "realtime:a",
        event: "late",
        payload: {}
      })
        .pipe(Effect.flip, Effect.fork)
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Fiber.join(error))._tag, "PushTimeout")
      yield* transport.push({ joinRef: null, ref: "8", topic: "realtime:a", event: "next", payload: {} }).pipe(
        Effect.fork
      )
      yield* transport.connect
      const connection = yield* Queue.take(server.connections)
      assert.deepStrictEqual((yield* nextFrame(connection))[3], "next")
    }))

  it.scoped("a route handler that throws is user code gone wrong: the frame is dropped and logged, the socket lives on", () =>
    Effect.gen(function*() {
      const { connection, transport } = yield* connected()
      const received: Array<string> = []
      const done = yield* Deferred.make<void>()
      yield* transport.route("realtime:room", (message) => {
        if (message.event === "boom") throw new Error("handler bug")
        received.push(message.event)
        if (message.event === "last") Deferred.unsafeDone(done, Exit.void)
      })
      yield* connection.send(JSON.stringify([null, null, "realtime:room", "boom", {}]))
      yield* connection.send(JSON.stringify([null, null, "realtime:room", "last", {}]))
      yield* Deferred.await(done)
      assert.deepStrictEqual(received, ["last"])
      assert.strictEqual((yield* transport.state)._tag, "Open")
    }))

  it.scoped("a heartbeat interval or timeout that is not a positive, finite duration is InvalidArgument", () =>
    Effect.gen(function*() {
      const policies: ReadonlyArray<Heartbeat.Options> = [
        { interval: 0 },
        { interval: "1 second", timeout: -5 },
        { interval: Duration.infinity }
      ]
      for (const policy of policies) {
        const error = yield* Effect.flip(setup({}, Heartbeat.layer(policy)))
        assert.strictEqual(error._tag, "InvalidArgument")
        assert.include(error.message, "heartbeat")
      }
    }))

  it.scoped("route delivers a topic's frames in order; garbage frames are counted and skipped", () =>
    Effect.gen(function*() {
      const { connection, transport } = yield* connected()
      const received: Array<string> = []
      const done = yield* Deferred.make<void>()
      yield* transport.route("realtime:room", (message) => {
        received.push(message.event)
        if (message.event === "last") Deferred.unsafeDone(done, Exit.void)
      })
      const duplicate = yield* Effect.flip(transport.route("realtime:room", () => {}))
      assert.strictEqual(duplicate._tag, "InvalidArgument")
      const before = yield* counter(Transport.metrics.framesBad)
      const frames: Array<FakeSocket.Frame> = [
        JSON.stringify([null, null, "realtime:room", "first", {}]),
        "{not json",
        JSON.stringify(["too", "short"]),
        new Uint8Array([9, 1, 2]),
        new Uint8Array([4, 200]),
        JSON.stringify([null, null, "realtime:other", "elsewhere", {}]),
        JSON.stringify([null, null, "realtime:room", "last", {}])
      ]
      for (const frame of frames) yield* connection.send(frame)
      yield* Deferred.await(done)
      assert.deepStrictEqual(received, ["first", "last"])
      assert.strictEqual((yield* counter(Transport.metrics.framesBad)) - before, 4)
      assert.strictEqual((yield* transport.state)._tag, "Open")
    }))

  it.scoped("a flood of bad frames is counted exactly and logged once, then as one summary a minute", () =>
    Effect.gen(function*() {
      const logs: Array<{ readonly message: string; readonly annotations: Record<string, unknown> }> = []
      const capture = Logger.make(({ annotations, message }) => {
        const text = Array.isArray(message) ? message.join(" ") : String(message)
        if (text.includes("could not be decoded")) {
          logs.push({ message: text, annotations: Object.fromEntries(HashMap.toEntries(annotations)) })
        }
      })
      yield* Effect.gen(function*() {
        // no heartbeats while the test clock moves minutes (the fake server does not answer them)
        const { connection, transport } = yield* connected({}, Heartbeat.layer({ interval: "1 day" }))
        let marks = 0
        yield* transport.route("realtime:room", () => {
          marks++
        })
        const mark = Effect.gen(function*() {
          const before = marks
          yield* connection.send(JSON.stringify([null, null, "realtime:room", "mark", {}]))
          while (marks === before) yield* Effect.yieldNow()
          yield* Effect.yieldNow()
        })
        const before = yield* counter(Transport.metrics.framesBad)
        for (let i = 0; i < 1000; i++) yield* connection.send("{not json")
        yield* mark
        assert.strictEqual((yield* counter(Transport.metrics.framesBad)) - before, 1000)
        assert.deepStrictEqual(logs.map((l) => l.message), ["skipped a frame that could not be decoded"])
        yield* TestClock.adjust("59 seconds")
        assert.strictEqual(logs.length, 1)
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(logs.map((l) => l.message), [
          "skipped a frame that could not be decoded",
          "skipped 999 more frames that could not be decoded"
        ])
        assert.include(logs[1]!.annotations, { skipped: 999, total: 1000, reason: "MalformedJson" })
        // within the next minute: counted, summarised at its end
        for (let i = 0; i < 10; i++) yield* connection.send(new Uint8Array([9, 1, 2]))
        yield* mark
        assert.strictEqual(logs.length, 2)
        yield* TestClock.adjust("1 minute")
        assert.strictEqual(logs[2]!.message, "skipped 10 more frames that could not be decoded")
        assert.include(logs[2]!.annotations, { skipped: 10, total: 1010, reason: "UnknownBinaryKind" })
        // after a quiet minute, the next bad frame is logged at once again
        yield* TestClock.adjust("1 minute")
        yield* connection.send("{not json")
        yield* mark
        assert.strictEqual(logs.length, 4)
        assert.strictEqual(logs[3]!.message, "skipped a frame that could not be decoded")
        assert.strictEqual((yield* counter(Transport.metrics.framesBad)) - before, 1011)
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
    }))

  it.scoped("frames over maxFrameBytes are skipped before decoding, counted as bad; the connection stays open", () =>
    Effect.gen(function*() {
      const { connection, transport } = yield* connected({ maxFrameBytes: 1024 })
      const received: Array<string> = []
      const done = yield* Deferred.make<void>()
      yield* transport.route("realtime:room", (message) => {
        received.push(message.event)
        if (message.event === "last") Deferred.unsafeDone(done, Exit.void)
      })
      const before = yield* counter(Transport.metrics.framesBad)
      const text = (event: string, size: number) =>
        JSON.stringify([null, null, "realtime:room", event, { filler: "x".repeat(size) }])
      const binary = new Uint8Array(1025)
      binary[0] = 4
      yield* connection.send(text("fits", 900))
      yield* connection.send(text("too-large", 1024))
      yield* connection.send(binary)
      yield* connection.send(text("last", 0))
      yield* Deferred.await(done)
      assert.deepStrictEqual(received, ["fits", "last"])
      assert.strictEqual((yield* counter(Transport.metrics.framesBad)) - before, 2)
      assert.strictEqual((yield* transport.state)._tag, "Open")
      const invalid = yield* Effect.flip(setup({ maxFrameBytes: 0 }))
      assert.include(invalid.message, "maxFrameBytes")
    }))

  it.scoped("binary frames keep their order with text frames", () =>
    Effect.gen(function*() {
      const { connection, transport } = yield* connected()
      const events: Array<string> = []
      const done = yield* Deferred.make<void>()
      yield* transport.route("realtime:r", (message) => {
        const payload = message.payload as { event?: string }
        events.push(message.event === "broadcast" ? `bin:${payload.event}` : `txt:${message.event}`)
        if (events.length === 4) Deferred.unsafeDone(done, Exit.void)
      })
      const kind4 = (event: string) => {
        const topic = new TextEncoder().encode("realtime:r")
        const ev = new TextEncoder().encode(event)
        const body = new TextEncoder().encode("{}")
        return new Uint8Array([4, topic.length, ev.length, 0, 1, ...topic, ...ev, ...body])
      }
      yield* connection.send(kind4("a"))
      yield* connection.send(JSON.stringify([null, null, "realtime:r", "t1", {}]))
      yield* connection.send(kind4("b"))
      yield* connection.send(JSON.stringify([null, null, "realtime:r", "t2", {}]))
      yield* Deferred.await(done)
      assert.deepStrictEqual(events, ["bin:a", "txt:t1", "bin:b", "txt:t2"])
    }))

  it.scoped("disconnect closes with 1000, fails waiting pushes, and leaves no fiber or timer behind", () =>
    Effect.gen(function*() {
      const supervisor = yield* Supervisor.track
      const { server, transport } = yield* setup().pipe(Effect.supervised(supervisor))
      yield* transport.connect.pipe(Effect.supervised(supervisor))
      const connection = yield* Queue.take(server.connections)
      yield* awaitState(transport, "Open")
      const ref = transport.makeRef()
      const waiting = yield* transport.request({ joinRef: null, ref, topic: "realtime:a", event: "x", payload: {} })
        .pipe(Effect.flip, Effect.fork)
      yield* nextFrame(connection)
      yield* transport.disconnect()
      const closed = yield* Deferred.await(connection.closed)
      assert.strictEqual(closed.code, 1000)
      assert.strictEqual((yield* Fiber.join(waiting))._tag, "SocketClosed")
      assert.strictEqual((yield* transport.state)._tag, "Closed")
      const live = (yield* supervisor.value).filter((fiber) => fiber.unsafePoll() === null)
      assert.deepStrictEqual(live.length, 0)
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(yield* Ref.get(server.attempts), 1, "no reconnect after disconnect")
      // and it can connect again
      yield* transport.connect
      yield* Queue.take(server.connections)
      yield* awaitState(transport, "Open")
    }))

  it.scoped("closing its scope leaves no fiber it started running (loop, heartbeat, timers, bad-frame summary)", () =>
    Effect.gen(function*() {
      const supervisor = yield* Supervisor.track
      const liveFibers = Effect.map(supervisor.value, (fibers) => fibers.filter((f) => f.unsafePoll() === null).length)
      const request = yield* Effect.scoped(
        Effect.gen(function*() {
          const { connection, transport } = yield* connected({ timeout: "1 minute" })
          // a request waiting on its deadline, a heartbeat waiting for its reply, two bad frames (the
          // second schedules the summary log, a fiber of the transport's scope)
          const request = yield* transport.request({
            joinRef: null,
            ref: transport.makeRef(),
            topic: "realtime:a",
            event: "x",
            payload: {}
          })
            .pipe(Effect.flip, Effect.fork)
          yield* nextFrame(connection)
          yield* TestClock.adjust("25 seconds")
          yield* nextFrame(connection)
          yield* connection.send("not a frame")
          yield* connection.send("not a frame either")
          yield* Effect.yieldNow()
          assert.isAbove(yield* liveFibers, 1, "the supervisor sees the transport's fibers")
          return request
        }).pipe(Effect.supervised(supervisor))
      )
      // the test's own request ends with the socket (Effect 3 resumes it in a later turn)
      assert.strictEqual((yield* Fiber.join(request))._tag, "SocketClosed")
      assert.strictEqual(yield* liveFibers, 0, "a fiber the transport started is still running")
    }))
})
