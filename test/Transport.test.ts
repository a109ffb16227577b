import * as Socket from "@effect/platform/Socket"
import { assert, describe, it } from "@effect/vitest"
import {
  Chunk,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  HashMap,
  Layer,
  Logger,
  Metric,
  Option,
  Queue,
  Redacted,
  Ref,
  Schedule,
  Stream,
  Supervisor,
  TestClock
} from "effect"
import * as Heartbeat from "../src/Heartbeat.js"
import * as Reconnect from "../src/Reconnect.js"
import * as FakeSocket from "../src/testing/FakeSocket.js"
import * as Transport from "../src/Transport.js"

type Options = Partial<Transport.Options>

const setup = (options: Options = {}, policies: Layer.Layer<never> = Layer.empty) =>
  Effect.gen(function*() {
    const { constructor, server } = yield* FakeSocket.make
    const transport = yield* Transport.make({ url: "ws://realtime.test/socket", apiKey: "anon-key", ...options }).pipe(
      Effect.provideService(Socket.WebSocketConstructor, constructor),
      Effect.provide(policies)
    )
    return { server, transport }
  })

const awaitState = (transport: Transport.Transport, tag: Transport.ConnectionState["_tag"]) =>
  transport.stateChanges.pipe(
    Stream.filter((s) => s._tag === tag),
    Stream.runHead,
    Effect.map(Option.getOrThrow)
  )

const decode = (frame: FakeSocket.Frame): Array<unknown> => {
  assert.strictEqual(typeof frame, "string", "expected a text frame")
  return JSON.parse(frame as string)
}

const nextFrame = (connection: FakeSocket.FakeConnection) => Effect.map(Queue.take(connection.sent), decode)

const reply = (connection: FakeSocket.FakeConnection, frame: Array<unknown>, status = "ok", response: unknown = {}) =>
  connection.send(JSON.stringify([frame[0], frame[1], frame[2], "phx_reply", { status, response }]))

const connected = (options: Options = {}, policies: Layer.Layer<never> = Layer.empty) =>
  Effect.gen(function*() {
    const { server, transport } = yield* setup(options, policies)
    yield* transport.connect
    const connection = yield* Queue.take(server.connections)
    yield* awaitState(transport, "Open")
    return { server, transport, connection }
  })

const counter = (metric: typeof Transport.metrics.framesBad) => Metric.value(metric).pipe(Effect.map((s) => s.count))

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

  it.scoped("heartbeats every interval on topic phoenix and reports sent / ok with latency", () =>
    Effect.gen(function*() {
      const { connection, transport } = yield* connected()
      const statuses = yield* transport.heartbeats.pipe(Stream.take(2), Stream.runCollect, Effect.fork)
      yield* TestClock.adjust("24 seconds")
      assert.isTrue(Option.isNone(yield* Queue.poll(connection.sent)))
      yield* TestClock.adjust("1 second")
      const heartbeat = yield* nextFrame(connection)
      assert.deepStrictEqual([heartbeat[0], heartbeat[2], heartbeat[3], heartbeat[4]], [
        null,
        "phoenix",
        "heartbeat",
        {}
      ])
      yield* TestClock.adjust("120 millis")
      yield* reply(connection, heartbeat)
      const [sent, ok] = Chunk.toReadonlyArray(yield* Fiber.join(statuses))
      assert.strictEqual(sent!._tag, "Sent")
      assert.strictEqual(ok!._tag, "Ok")
      if (ok!._tag === "Ok") assert.strictEqual(Duration.toMillis(ok!.latency), 120)
      // next heartbeat 25 s after the reply; the connection stays open past the timeout
      yield* TestClock.adjust("25 seconds")
      const second = yield* nextFrame(connection)
      assert.strictEqual(second[3], "heartbeat")
      yield* reply(connection, second)
      yield* TestClock.adjust("20 seconds")
      assert.strictEqual((yield* transport.state)._tag, "Open")
    }))

  it.scoped("an unanswered heartbeat closes the socket and reconnects after the backoff", () =>
    Effect.gen(function*() {
      const { connection, server, transport } = yield* connected({}, Heartbeat.layer({ interval: "10 seconds" }))
      const statuses = yield* transport.heartbeats.pipe(Stream.take(2), Stream.runCollect, Effect.fork)
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual((yield* nextFrame(connection))[3], "heartbeat")
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(
        Chunk.toReadonlyArray(yield* Fiber.join(statuses)).map((s) => s._tag),
        ["Sent", "Timeout"]
      )
      const closed = yield* Deferred.await(connection.closed)
      assert.strictEqual(closed.code, 1000)
      const state = yield* awaitState(transport, "Reconnecting")
      assert.strictEqual(state._tag === "Reconnecting" && state.reason, "heartbeat timeout")
      assert.strictEqual(state._tag === "Reconnecting" && Duration.toMillis(state.delay), 1000)
      assert.isTrue(Option.isNone(yield* Queue.poll(server.connections)))
      yield* TestClock.adjust("1 second")
      yield* Queue.take(server.connections)
      yield* awaitState(transport, "Open")
    }))

  it.scoped("backs off 1 s, 2 s, 5 s, 10 s, 10 s while refused, and resets after a connection held 25 s", () =>
    Effect.gen(function*() {
      const { connection, server, transport } = yield* connected()
      const delays = yield* transport.stateChanges.pipe(
        Stream.filterMap((s) =>
          s._tag === "Reconnecting" ? Option.some([s.attempt, Duration.toMillis(s.delay)]) : Option.none()
        ),
        Stream.take(6),
        Stream.runCollect,
        Effect.fork
      )
      yield* Ref.set(server.refuseNext, 4)
      yield* connection.close(4001, "kicked")
      for (const ms of [1000, 2000, 5000, 10000, 10000]) yield* TestClock.adjust(ms)
      const second = yield* Queue.take(server.connections)
      yield* awaitState(transport, "Open")
      assert.strictEqual(yield* Ref.get(server.attempts), 6)
      // held for a heartbeat interval: the backoff starts over
      yield* TestClock.adjust("25 seconds")
      yield* second.terminate
      yield* awaitState(transport, "Reconnecting")
      yield* TestClock.adjust("1 second")
      yield* Queue.take(server.connections)
      yield* awaitState(transport, "Open")
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Fiber.join(delays)), [
        [1, 1000],
        [2, 2000],
        [3, 5000],
        [4, 10000],
        [5, 10000],
        [1, 1000]
      ])
    }))

  it.scoped("reports the close code and reconnects on any close that is not a disconnect", () =>
    Effect.gen(function*() {
      const { connection, server, transport } = yield* connected()
      yield* connection.close(1001, "going away")
      const state = yield* awaitState(transport, "Reconnecting")
      assert.strictEqual(state._tag === "Reconnecting" && state.code, 1001)
      yield* TestClock.adjust("1 second")
      const second = yield* Queue.take(server.connections)
      yield* awaitState(transport, "Open")
      yield* TestClock.adjust("25 seconds")
      yield* second.close(1000, "normal")
      const again = yield* awaitState(transport, "Reconnecting")
      assert.strictEqual(again._tag === "Reconnecting" && again.attempt, 1)
      assert.strictEqual(again._tag === "Reconnecting" && again.code, 1000)
      assert.strictEqual(again._tag === "Reconnecting" && again.reason, "closed by the server (1000: normal)")
    }))

  it.scoped("an upgrade refused with a 503 is in the state (status, body) and retried", () =>
    Effect.gen(function*() {
      const { server, transport } = yield* setup()
      yield* Ref.set(server.refuseNext, 1)
      yield* transport.connect
      const state = yield* awaitState(transport, "Reconnecting")
      assert.strictEqual(state._tag === "Reconnecting" && state.status, 503)
      assert.strictEqual(state._tag === "Reconnecting" && state.body, "refused by FakeServer")
      assert.strictEqual(
        state._tag === "Reconnecting" && state.reason,
        "upgrade refused: HTTP 503 refused by FakeServer"
      )
      yield* TestClock.adjust("1 second")
      yield* Queue.take(server.connections)
      yield* awaitState(transport, "Open")
    }))

  it.scoped("an upgrade refused with a 401 closes for good until the next connect; waiting pushes fail", () =>
    Effect.gen(function*() {
      const refusing = FakeSocket.makeConstructor((peer) =>
        peer.url.includes("apikey=bad") ? { refuse: { status: 401, body: "invalid key" } } : {
          onMessage: () => {},
          onClose: () => {}
        }
      )
      const transport = yield* Transport.make({ url: "ws://realtime.test/socket", apiKey: "bad" }).pipe(
        Effect.provideService(Socket.WebSocketConstructor, refusing)
      )
      const waiting = yield* transport.push({ joinRef: null, ref: "1", topic: "realtime:a", event: "x", payload: {} })
        .pipe(Effect.flip, Effect.fork)
      yield* Effect.yieldNow()
      yield* transport.connect
      const state = yield* awaitState(transport, "Closed")
      assert.strictEqual(state._tag === "Closed" && state.status, 401)
      assert.strictEqual(state._tag === "Closed" && state.body, "invalid key")
      assert.include(state._tag === "Closed" ? state.reason : "", "upgrade refused: HTTP 401")
      const error = yield* Fiber.join(waiting)
      assert.strictEqual(error._tag, "SocketClosed")
      if (error._tag === "SocketClosed") assert.strictEqual(error.status, 401)
    }))

  it.scoped("a socket that never opens times out after openTimeout; a constructor that throws is a failed attempt", () =>
    Effect.gen(function*() {
      let closedWith: number | undefined
      const silent = () =>
        ({
          readyState: 0,
          addEventListener: () => {},
          removeEventListener: () => {},
          close: (code?: number) => {
            closedWith = code
          },
          send: () => {}
        }) as unknown as globalThis.WebSocket
      const transport = yield* Transport.make({
        url: "ws://realtime.test/socket",
        apiKey: "k",
        openTimeout: "2 seconds"
      })
        .pipe(Effect.provideService(Socket.WebSocketConstructor, silent))
      yield* transport.connect
      yield* TestClock.adjust("2 seconds")
      const state = yield* awaitState(transport, "Reconnecting")
      assert.strictEqual(state._tag === "Reconnecting" && state.reason, "no answer to the upgrade within 2000 ms")
      assert.strictEqual(closedWith, 1000)
      yield* transport.disconnect()

      const throwing = yield* Transport.make({ url: "ws://realtime.test/socket", apiKey: "k" }).pipe(
        Effect.provideService(Socket.WebSocketConstructor, () => {
          throw new Error("no WebSocket here")
        })
      )
      yield* throwing.connect
      const failed = yield* awaitState(throwing, "Reconnecting")
      assert.strictEqual(failed._tag === "Reconnecting" && failed.reason, "connection failed: no WebSocket here")
    }))

  it.scoped("a server that closes every connection at once is reconnected to on the backoff, not every second", () =>
    Effect.gen(function*() {
      const { connection, server, transport } = yield* connected()
      const delays = yield* transport.stateChanges.pipe(
        Stream.filterMap((s) => s._tag === "Reconnecting" ? Option.some(Duration.toMillis(s.delay)) : Option.none()),
        Stream.take(4),
        Stream.runCollect,
        Effect.fork
      )
      yield* connection.close(1011, "internal error")
      for (const ms of [1000, 2000, 5000]) {
        yield* TestClock.adjust(ms)
        const next = yield* Queue.take(server.connections)
        yield* awaitState(transport, "Open")
        yield* next.close(1011, "internal error")
        yield* awaitState(transport, "Reconnecting")
      }
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Fiber.join(delays)), [1000, 2000, 5000, 10000])
    }))

  it.scoped("in-flight requests fail with SocketClosed when the connection drops", () =>
    Effect.gen(function*() {
      const { connection, transport } = yield* connected()
      const ref = transport.makeRef()
      const fiber = yield* transport.request({ joinRef: null, ref, topic: "realtime:a", event: "x", payload: {} }).pipe(
        Effect.flip,
        Effect.fork
      )
      yield* nextFrame(connection)
      yield* connection.terminate
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "SocketClosed")
    }))

  it.scoped("a custom reconnect schedule that ends leaves the transport Closed", () =>
    Effect.gen(function*() {
      const { connection, server, transport } = yield* connected(
        {},
        Reconnect.layer({ reconnect: Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(2))) })
      )
      yield* Ref.set(server.refuseNext, 10)
      yield* connection.close(4000, "bye")
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("1 second")
      const state = yield* awaitState(transport, "Closed")
      assert.include(state._tag === "Closed" ? state.reason : "", "gave up")
      assert.strictEqual(yield* Ref.get(server.attempts), 3)
    }))

  it.scoped("a connect made by a state consumer as the reconnect schedule gives up starts a new loop", () =>
    Effect.gen(function*() {
      const { connection, server, transport } = yield* connected(
        {},
        Reconnect.layer({ reconnect: Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(1))) })
      )
      const seen: Array<string> = []
      let reconnected = 0
      const retried = yield* Deferred.make<void>()
      yield* transport.stateChanges.pipe(
        Stream.runForEach((state) => {
          seen.push(state._tag)
          if (state._tag === "Closed" && state.reason.includes("gave up") && reconnected++ === 0) {
            return transport.connect
          }
          return reconnected === 1 && state._tag === "Reconnecting" ? Deferred.succeed(retried, void 0) : Effect.void
        }),
        Effect.fork
      )
      yield* Effect.yieldNow()
      yield* Ref.set(server.refuseNext, 10)
      yield* connection.close(4000, "bye")
      yield* awaitState(transport, "Reconnecting")
      // the retry is refused, the schedule gives up, the consumer connects: a new loop tries again
      yield* TestClock.adjust("1 second")
      yield* Deferred.await(retried)
      assert.strictEqual(reconnected, 1)
      assert.deepStrictEqual(seen.slice(seen.indexOf("Closed")), ["Closed", "Connecting", "Reconnecting"])
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
