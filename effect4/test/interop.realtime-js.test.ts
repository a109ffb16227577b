/**
 * `@supabase/realtime-js` 2.109 against the in-process RealtimeServer over real sockets on
 * 127.0.0.1 (`ws` as the transport), vsn 2.0.0 and 1.0.0.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { RealtimeChannel } from "@supabase/realtime-js"
import { RealtimeClient } from "@supabase/realtime-js"
import { Context, Effect, Exit, Fiber, Layer, Option, Redacted, Scope, Stream } from "effect"
import { WebSocket } from "ws"
import * as NodeRealtime from "../src/node/NodeRealtime.js"
import * as RealtimeClientEffect from "../src/RealtimeClient.js"
import * as RealtimeServer from "../src/testing/RealtimeServer.js"

let scope: Scope.Closeable
let server: RealtimeServer.Server

beforeAll(async () => {
  scope = await Effect.runPromise(Scope.make())
  server = await Effect.runPromise(
    RealtimeServer.makeListen({ idleTimeout: false }).pipe(Scope.provide(scope))
  )
})

afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
})

const clients: Array<RealtimeClient> = []

const makeClient = (options: { readonly vsn?: "1.0.0" | "2.0.0"; readonly apikey?: string } = {}) => {
  const client = new RealtimeClient(server.url, {
    params: { apikey: options.apikey ?? server.apiKey },
    transport: WebSocket as any,
    vsn: options.vsn ?? "2.0.0",
    heartbeatIntervalMs: 5_000,
    timeout: 3_000
  })
  clients.push(client)
  return client
}

const cleanup = async () => {
  for (const client of clients.splice(0)) {
    await client.removeAllChannels()
    await client.disconnect()
  }
}

const subscribed = (channel: RealtimeChannel): Promise<void> =>
  new Promise((resolve, reject) => {
    channel.subscribe((status, error) => {
      if (status === "SUBSCRIBED") resolve()
      else if (status === "CHANNEL_ERROR" || status === "TIMED_OUT") reject(error ?? new Error(status))
    })
  })

const until = <A>(f: (state: RealtimeServer.ServerState) => A | undefined) => Effect.runPromise(server.waitFor(f))

const received = <A>(register: (resolve: (a: A) => void) => void): Promise<A> => new Promise(register)

describe.each(["2.0.0", "1.0.0"] as const)("realtime-js %s", (vsn) => {
  it("subscribes and exchanges JSON broadcasts both ways", async () => {
    try {
      const a = makeClient({ vsn })
      const b = makeClient({ vsn })
      const chA = a.channel("room:json", { config: { broadcast: { self: false, ack: true } } })
      const chB = b.channel("room:json", { config: { broadcast: { self: false, ack: true } } })
      const gotA = received<any>((resolve) => chA.on("broadcast", { event: "hello" }, resolve))
      const gotB = received<any>((resolve) => chB.on("broadcast", { event: "hello" }, resolve))
      await Promise.all([subscribed(chA), subscribed(chB)])
      const connections = await until((s) => s.subscribers("room:json").length === 2 ? s.connections : undefined)
      expect(connections.every((c) => c.vsn === vsn)).toBe(true)
      expect(await chA.send({ type: "broadcast", event: "hello", payload: { from: "a" } })).toBe("ok")
      expect(await chB.send({ type: "broadcast", event: "hello", payload: { from: "b" } })).toBe("ok")
      expect((await gotB).payload).toEqual({ from: "a" })
      expect((await gotA).payload).toEqual({ from: "b" })
      // realtime-js sends every WS broadcast as kind 3 on vsn 2.0.0, as text on 1.0.0
      const state = await Effect.runPromise(server.state)
      const frames = state.connections.flatMap((c) => state.received(c.id)).filter((f) => f.event === "broadcast")
      expect(frames.length).toBe(2)
      expect(frames.every((f) => f.binary === (vsn === "2.0.0"))).toBe(true)
    } finally {
      await cleanup()
    }
  })

  it("presence: sync, join and leave between two clients", async () => {
    try {
      const a = makeClient({ vsn })
      const b = makeClient({ vsn })
      const chA = a.channel("room:presence", { config: { presence: { key: "ada" } } })
      const chB = b.channel("room:presence", { config: { presence: { key: "bob" } } })
      await subscribed(chA)
      expect(await chA.track({ name: "Ada" })).toBe("ok")
      await until((s) => Object.keys(s.presence("room:presence")).length === 1 || undefined)
      const joinSeen = received<any>((resolve) =>
        chB.on("presence", { event: "join" }, (p: any) => {
          if (p.key === "bob") resolve(p)
        })
      )
      const leaveSeen = received<any>((resolve) => chB.on("presence", { event: "leave" }, resolve))
      const synced = received<void>((resolve) =>
        chB.on("presence", { event: "sync" }, () => {
          if (Object.keys(chB.presenceState()).length === 2) resolve()
        })
      )
      await subscribed(chB)
      expect(await chB.track({ name: "Bob" })).toBe("ok")
      await joinSeen
      await synced
      expect(chB.presenceState().ada?.[0]).toMatchObject({ name: "Ada" })
      await a.removeChannel(chA)
      const leave = await leaveSeen
      expect(leave.key).toBe("ada")
      expect(Object.keys(chB.presenceState())).toEqual(["bob"])
    } finally {
      await cleanup()
    }
  })

  it("postgres changes with a filter, via emitChange", async () => {
    try {
      const a = makeClient({ vsn })
      const changes: Array<any> = []
      let delivered!: () => void
      const first = new Promise<void>((resolve) => delivered = resolve)
      const ch = a.channel("db").on(
        "postgres_changes",
        { event: "INSERT", schema: "public", table: "todos", filter: "owner=eq.ada" },
        (payload) => {
          changes.push(payload)
          delivered()
        }
      )
      await subscribed(ch)
      await until((s) => s.subscribers("db")[0]?.postgresSubscribed || undefined)
      const emit = (change: RealtimeServer.ChangeInput) => Effect.runPromise(server.emitChange(change))
      expect(await emit({ table: "todos", type: "INSERT", record: { id: 1, owner: "bob" } })).toBe(0)
      expect(await emit({ table: "other", type: "INSERT", record: { id: 3, owner: "ada" } })).toBe(0)
      expect(await emit({ table: "todos", type: "INSERT", record: { id: 2, owner: "ada", done: false } })).toBe(1)
      await first
      expect(changes).toHaveLength(1)
      expect(changes[0]).toMatchObject({
        eventType: "INSERT",
        schema: "public",
        table: "todos",
        new: { id: 2, owner: "ada", done: false },
        old: {},
        errors: null
      })
    } finally {
      await cleanup()
    }
  })

  it("HTTP broadcast: send() REST fallback on an unsubscribed channel, and httpSend()", async () => {
    try {
      const listener = makeClient({ vsn })
      const sender = makeClient({ vsn })
      const ch = listener.channel("room:http")
      const got: Array<any> = []
      let count!: (n: number) => void
      const two = new Promise<void>((resolve) => count = (n) => n === 2 && resolve())
      ch.on("broadcast", { event: "*" }, (message: any) => {
        got.push(message)
        count(got.length)
      })
      await subscribed(ch)
      const unsubscribed = sender.channel("room:http")
      expect(await unsubscribed.send({ type: "broadcast", event: "rest", payload: { via: "batch" } })).toBe("ok")
      expect(await unsubscribed.httpSend("single", { via: "single" })).toEqual({ success: true })
      await two
      expect(got).toEqual([
        { type: "broadcast", event: "rest", payload: { via: "batch" } },
        { type: "broadcast", event: "single", payload: { via: "single" } }
      ])
      expect((await Effect.runPromise(server.stats)).httpRequests).toBeGreaterThanOrEqual(2)
      // the server's answers, as realtime-js reports them: any JSON value is accepted, a bad key is 401
      await expect(unsubscribed.httpSend("x", 1)).resolves.toEqual({ success: true })
      const bad = makeClient({ vsn, apikey: "bad-key" })
      await expect(bad.channel("room:http").httpSend("x", { a: 1 })).rejects.toThrow("Unauthorized")
    } finally {
      await cleanup()
    }
  })

  it("a join with an expired access token is rejected with the server's reason", async () => {
    try {
      const a = makeClient({ vsn })
      await a.setAuth(RealtimeServer.signToken({ role: "authenticated", exp: Math.floor(Date.now() / 1000) - 60 }))
      const ch = a.channel("room:expired")
      const error = await new Promise<Error>((resolve) =>
        ch.subscribe((status, err) => {
          if (status === "CHANNEL_ERROR") resolve(err!)
        })
      )
      expect(error.message).toMatch(/^InvalidJWTToken: Token has expired \d+ seconds ago$/)
      const rejected = await until((s) => s.stats.joinsRejected > 0 ? s.stats.joinsRejected : undefined)
      expect(rejected).toBeGreaterThan(0)
    } finally {
      await cleanup()
    }
  })
})

describe("realtime-js binary broadcast", () => {
  it("kind 3 from a vsn 2.0.0 sender arrives as kind 4 (ArrayBuffer) at vsn 2.0.0, not at all at 1.0.0", async () => {
    try {
      const sender = makeClient({ vsn: "2.0.0" })
      const v2 = makeClient({ vsn: "2.0.0" })
      const v1 = makeClient({ vsn: "1.0.0" })
      const chS = sender.channel("room:bin", { config: { broadcast: { ack: true } } })
      const chV2 = v2.channel("room:bin")
      const chV1 = v1.channel("room:bin")
      const v2got: Array<any> = []
      const v1got: Array<any> = []
      let v2done!: () => void
      let v1done!: () => void
      const v2all = new Promise<void>((resolve) => v2done = resolve)
      const v1all = new Promise<void>((resolve) => v1done = resolve)
      chV2.on("broadcast", { event: "*" }, (m: any) => {
        v2got.push(m)
        if (m.event === "end") v2done()
      })
      chV1.on("broadcast", { event: "*" }, (m: any) => {
        v1got.push(m)
        if (m.event === "end") v1done()
      })
      await Promise.all([subscribed(chS), subscribed(chV2), subscribed(chV1)])
      expect(await chS.send({ type: "broadcast", event: "bin", payload: new Uint8Array([1, 2, 3]).buffer })).toBe("ok")
      expect(await chS.httpSend("http-bin", new Uint8Array([4, 5]).buffer)).toEqual({ success: true })
      expect(await chS.send({ type: "broadcast", event: "end", payload: { done: true } })).toBe("ok")
      await Promise.all([v2all, v1all])
      expect(v2got.map((m) => [m.event, m.payload instanceof ArrayBuffer ? [...new Uint8Array(m.payload)] : m.payload]))
        .toEqual([["bin", [1, 2, 3]], ["http-bin", [4, 5]], ["end", { done: true }]])
      expect(v1got).toEqual([{ type: "broadcast", event: "end", payload: { done: true } }])
      const state = await Effect.runPromise(server.state)
      const senderFrames = state.received(state.subscribers("room:bin").find((c) => c.ack)!.connection)
      expect(senderFrames.filter((f) => f.event === "broadcast").map((f) => f.binary)).toEqual([true, true])
    } finally {
      await cleanup()
    }
  })
})

describe("realtime-js replay", () => {
  it("a private channel with replay gets the stored JSON (text) and binary (kind 4) rows with meta, then live ones", async () => {
    try {
      const since = Date.now()
      const send = (event: string, payload: unknown, id: string) =>
        Effect.runPromise(server.dbSend({ topic: "room:replay", event, payload, id }))
      await send("note", { text: "a" }, "00000000-0000-4000-8000-00000000000a")
      await send("blob", new Uint8Array([1, 2]), "00000000-0000-4000-8000-00000000000b")
      await send("note", { text: "c" }, "00000000-0000-4000-8000-00000000000c")
      const client = makeClient({ vsn: "2.0.0" })
      const channel = client.channel("room:replay", {
        config: { private: true, broadcast: { replay: { since, limit: 2 } } }
      })
      const got: Array<any> = []
      let done!: () => void
      const all = new Promise<void>((resolve) => done = resolve)
      channel.on("broadcast", { event: "*" }, (message: any) => {
        got.push(message)
        if (message.event === "live") done()
      })
      await subscribed(channel)
      await send("note", { text: "c" }, "00000000-0000-4000-8000-00000000000c") // replayed already: not again
      await send("live", { text: "d" }, "00000000-0000-4000-8000-00000000000d")
      await all
      expect(
        got.map((m) => [m.event, m.payload instanceof ArrayBuffer ? [...new Uint8Array(m.payload)] : m.payload, m.meta])
      )
        .toEqual([
          ["blob", [1, 2], { replayed: true, id: "00000000-0000-4000-8000-00000000000b" }],
          ["note", { text: "c" }, { replayed: true, id: "00000000-0000-4000-8000-00000000000c" }],
          ["live", { text: "d" }, { id: "00000000-0000-4000-8000-00000000000d" }]
        ])
      // realtime-js refuses replay on a public channel before anything is sent
      expect(() => client.channel("room:replay-public", { config: { broadcast: { replay: { since } } } })).toThrow(
        "tried to use replay on public channel 'realtime:room:replay-public'. It must be a private channel."
      )
    } finally {
      await cleanup()
    }
  })
})

describe("the real listener", () => {
  const handshake = (path: string, headers: Record<string, string> = {}) =>
    new Promise<{ readonly status: number; readonly body: string }>((resolve, reject) => {
      const ws = new WebSocket(`${server.url.replace(/\/socket$/, "")}${path}`, { headers })
      ws.on("open", () => {
        ws.close()
        resolve({ status: 101, body: "" })
      })
      ws.on("unexpected-response", (_request, response) => {
        let body = ""
        response.on("data", (chunk: Buffer) => body += chunk.toString())
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body }))
      })
      ws.on("error", (error) => {
        if (!/Unexpected server response/.test(error.message)) reject(error)
      })
    })

  it("answers handshake errors with HTTP statuses and {error} bodies; x-api-key wins over apikey", async () => {
    const expired = RealtimeServer.signToken({ role: "anon", exp: 1 })
    expect(await handshake("/socket/websocket?vsn=2.0.0")).toEqual({
      status: 401,
      body: JSON.stringify({ error: "API key is missing" })
    })
    expect(await handshake(`/socket/websocket?vsn=9.0.0&apikey=${server.apiKey}`)).toEqual({ status: 403, body: "" })
    expect((await handshake(`/realtime/v1/websocket?apikey=${expired}`)).body).toMatch(
      /^\{"error":"Token has expired \d+ seconds ago"\}$/
    )
    expect(await handshake(`/socket/websocket?apikey=${expired}`, { "x-api-key": server.apiKey })).toEqual({
      status: 101,
      body: ""
    })
    expect((await handshake(`/socket/websocket?apikey=${server.apiKey}`, { "x-api-key": "nope" })).status).toBe(401)
    await Effect.runPromise(server.refuseConnections(1, { status: 503, error: "maintenance" }))
    expect(await handshake(`/socket/websocket?apikey=${server.apiKey}`)).toEqual({
      status: 503,
      body: JSON.stringify({ error: "maintenance" })
    })
  })

  it("serves the HTTP API under /api/broadcast and /realtime/v1/api/broadcast", async () => {
    for (const path of ["/api/broadcast", "/realtime/v1/api/broadcast"]) {
      const response = await fetch(`${server.httpUrl}${path}`, {
        method: "POST",
        headers: { apikey: server.apiKey, "content-type": "application/json" },
        body: JSON.stringify({ messages: [{ topic: "t", event: "e", payload: {} }] })
      })
      expect(response.status).toBe(202)
      expect(response.headers.get("access-control-allow-origin")).toBe("*")
    }
    const unauthorized = await fetch(`${server.httpUrl}/api/broadcast/t/events/e`, { method: "POST", body: "{}" })
    expect([unauthorized.status, await unauthorized.json()]).toEqual([401, { message: "Unauthorized" }])
  })
})

describe("mixed room: realtime-js and this SDK on the same server", () => {
  it("see each other's broadcasts (JSON and binary), presence, and the same change", async () => {
    try {
      const js = makeClient({ vsn: "2.0.0" })
      const jsChannel = js.channel("room:mixed", { config: { broadcast: { ack: true }, presence: { key: "js" } } })
      const jsGot: Array<any> = []
      let jsDone!: () => void
      const jsAll = new Promise<void>((resolve) => jsDone = resolve)
      jsChannel.on("broadcast", { event: "*" }, (m: any) => {
        jsGot.push(m)
        if (jsGot.length === 2) jsDone()
      })
      let jsChange!: (c: any) => void
      const jsChanged = new Promise<any>((resolve) => jsChange = resolve)
      jsChannel.on("postgres_changes", { event: "INSERT", schema: "public", table: "todos" }, (c) => jsChange(c))
      let jsSeesEffect!: () => void
      const jsPresence = new Promise<void>((resolve) => jsSeesEffect = resolve)
      jsChannel.on("presence", { event: "sync" }, () => {
        if (jsChannel.presenceState().effect !== undefined) jsSeesEffect()
      })
      await subscribed(jsChannel)
      expect(await jsChannel.track({ who: "js" })).toBe("ok")

      await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(
          NodeRealtime.layer({ url: server.url, apiKey: Redacted.make(server.apiKey) })
        ).pipe(Effect.orDie)
        const client = Context.get(context, RealtimeClientEffect.RealtimeClient)
        const channel = yield* client.channel("room:mixed", {
          broadcast: { ack: true },
          presence: { key: "effect" },
          postgresChanges: [{ event: "INSERT", schema: "public", table: "todos" }]
        })
        const broadcasts = yield* channel.broadcast("*").pipe(
          Stream.take(2),
          Stream.runCollect,
          Effect.forkChild({ startImmediately: true })
        )
        const change = yield* channel.postgresChanges().pipe(
          Stream.runHead,
          Effect.forkChild({ startImmediately: true })
        )
        const presence = yield* channel.presence().changes.pipe(
          Stream.filter((state) => state.has("js") && state.has("effect")),
          Stream.runHead,
          Effect.forkChild({ startImmediately: true })
        )
        yield* channel.subscribe.pipe(Effect.orDie)
        yield* server.waitFor((state) =>
          state.subscribers("room:mixed").filter((c) => c.postgresSubscribed).length === 2 ? true : undefined
        )
        // this SDK → realtime-js: JSON and binary
        yield* channel.send("hello", { from: "effect" }).pipe(Effect.orDie)
        yield* channel.send("bytes", new Uint8Array([1, 2])).pipe(Effect.orDie)
        // realtime-js → this SDK
        yield* Effect.promise(() => jsChannel.send({ type: "broadcast", event: "hi", payload: { from: "js" } }))
        yield* Effect.promise(() =>
          jsChannel.send({ type: "broadcast", event: "bin", payload: new Uint8Array([3]).buffer })
        )
        const received = yield* Fiber.join(broadcasts)
        expect(received.map((b) => [b.event, b.payload])).toEqual([
          ["hi", { from: "js" }],
          ["bin", new Uint8Array([3])]
        ])
        yield* Effect.promise(() => jsAll)
        expect(
          jsGot.map((m) => [m.event, m.payload instanceof ArrayBuffer ? [...new Uint8Array(m.payload)] : m.payload])
        )
          .toEqual([["hello", { from: "effect" }], ["bytes", [1, 2]]])
        // presence both ways
        yield* channel.track({ who: "effect" }).pipe(Effect.orDie)
        const state = yield* Fiber.join(presence)
        expect(Option.getOrThrow(state).get("js")?.[0]).toMatchObject({ who: "js" })
        yield* Effect.promise(() => jsPresence)
        expect(jsChannel.presenceState().effect?.[0]).toMatchObject({ who: "effect" })
        // the same change, to both
        expect(yield* server.emitChange({ table: "todos", type: "INSERT", record: { id: 7, title: "x" } })).toBe(2)
        const ours = Option.getOrThrow(yield* Fiber.join(change))
        const theirs = yield* Effect.promise(() => jsChanged)
        expect(ours).toMatchObject({ eventType: "INSERT", table: "todos", new: { title: "x" } })
        expect(theirs).toMatchObject({ eventType: "INSERT", table: "todos", new: { id: 7, title: "x" } })
        yield* client.removeAllChannels
      })))
    } finally {
      await cleanup()
    }
  })
})
