/**
 * The in-process RealtimeServer's broadcast: between sockets, private channels' policies, the HTTP
 * broadcast API, realtime-js against it; in memory (FakeSocket), driven with raw frames, under
 * TestClock.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { describe, expect, it } from "@effect/vitest"
import { RealtimeClient as RealtimeJs } from "@supabase/realtime-js"
import { Deferred, Effect, Exit, Layer } from "effect"
import * as RealtimeServer from "../src/testing/RealtimeServer.js"
import { broadcastConfig, type Client, connect, json, server } from "./support/realtimeServer.js"

describe("broadcast", () => {
  it.scoped("text fan-out with self and ack; payload_size_exceeded as a bare string", () =>
    Effect.gen(function*() {
      const s = yield* server({ limits: { maxPayloadBytes: 100 } })
      const a = yield* connect(s)
      const b = yield* connect(s)
      const ja = yield* a.joined("realtime:room", broadcastConfig({ self: false, ack: true }))
      const jb = yield* b.joined("realtime:room", broadcastConfig({ self: true }))
      const text = (c: Client, joinRef: string, ref: string, payload: unknown) =>
        Effect.sync(() => c.ws.send(JSON.stringify([joinRef, ref, "realtime:room", "broadcast", payload])))
      yield* text(a, ja, "10", { type: "broadcast", event: "hi", payload: { n: 1 }, extra: true })
      expect((yield* a.drain).map((m) => [m.ref, m.event, m.payload])).toEqual([
        ["10", "phx_reply", { status: "ok", response: {} }]
      ])
      expect((yield* b.drain).map((m) => [m.joinRef, m.event, m.payload, m.binary])).toEqual([
        [null, "broadcast", { type: "broadcast", event: "hi", payload: { n: 1 }, extra: true }, false]
      ])
      // b has self: true and no ack
      yield* text(b, jb, "11", { type: "broadcast", event: "me", payload: {} })
      expect((yield* b.drain).map((m) => m.event)).toEqual(["broadcast"])
      expect((yield* a.drain).map((m) => m.event)).toEqual(["broadcast"])
      // oversize: error reply with ack, dropped silently without
      yield* text(a, ja, "12", { type: "broadcast", event: "big", payload: { s: "x".repeat(200) } })
      expect((yield* a.drain).map((m) => m.payload)).toEqual([{ status: "error", response: "payload_size_exceeded" }])
      yield* text(b, jb, "13", { type: "broadcast", event: "big", payload: { s: "x".repeat(200) } })
      expect(yield* b.drain).toEqual([])
      expect(yield* a.drain).toEqual([])
      const stats = yield* s.stats
      expect(stats).toMatchObject({ broadcastsReceived: 4, broadcastsDelivered: 3 })
    }))

  it.scoped("kind 3 JSON → kind 4 to vsn 2, converted text to vsn 1; kind 3 binary → kind 4, nothing to vsn 1", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const sender = yield* connect(s)
      const v2 = yield* connect(s)
      const v1 = yield* connect(s, { vsn: "1.0.0" })
      const js = yield* sender.joined("realtime:room", broadcastConfig({ ack: true }))
      yield* v2.joined("realtime:room")
      yield* v1.joined("realtime:room")
      const kind3 = (ref: string, payload: unknown) =>
        sender.send({
          joinRef: js,
          ref,
          topic: "realtime:room",
          event: "broadcast",
          payload: { type: "broadcast", event: "ev", payload }
        })
      yield* kind3("20", { json: true })
      yield* kind3("21", new Uint8Array([1, 2, 3]))
      expect((yield* sender.drain).map((m) => [m.ref, m.event])).toEqual([["20", "phx_reply"], ["21", "phx_reply"]])
      const got2 = yield* v2.drain
      expect(got2.map((m) => [m.binary, m.payload])).toEqual([
        [true, { type: "broadcast", event: "ev", payload: { json: true } }],
        [true, { type: "broadcast", event: "ev", payload: new Uint8Array([1, 2, 3]) }]
      ])
      const got1 = yield* v1.drain
      expect(got1.map((m) => [m.binary, m.topic, m.event, m.payload])).toEqual([
        [false, "realtime:room", "broadcast", { type: "broadcast", event: "ev", payload: { json: true } }]
      ])
      const received = yield* s.received("c1")
      expect(received.filter((f) => f.event === "broadcast").every((f) => f.binary)).toBe(true)
    }))

  it.scoped("public and private channels with the same name are different rooms", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const a = yield* connect(s)
      const b = yield* connect(s)
      const ja = yield* a.joined("realtime:room", broadcastConfig({}, { private: true }))
      yield* b.joined("realtime:room")
      yield* a.push("realtime:room", "broadcast", { type: "broadcast", event: "x", payload: {} }, ja)
      expect(yield* b.drain).toEqual([])
      expect((yield* s.subscribers("room", { private: true })).length).toBe(1)
    }))
})

describe("private channels", () => {
  it.scoped("policy: write denied is dropped without ack; readers only; presence write denied; revoked read", () =>
    Effect.gen(function*() {
      const s = yield* server({
        policy: (claims) => ({
          broadcastRead: claims.sub !== "writer-only",
          broadcastWrite: claims.sub === "writer" || claims.sub === "writer-only",
          presenceRead: claims.sub === "writer",
          presenceWrite: false
        })
      })
      const token = (sub: string) => s.makeToken({ claims: { sub } })
      const reader = yield* connect(s)
      const writer = yield* connect(s)
      const config = { config: { private: true, broadcast: { ack: true, self: true } } }
      const jr = yield* reader.joined("realtime:secret", { ...config, access_token: yield* token("reader") })
      const jw = yield* writer.joined("realtime:secret", { ...config, access_token: yield* token("writer") })
      yield* writer.drain
      // denied write: no ack, not delivered
      yield* reader.push("realtime:secret", "broadcast", { type: "broadcast", event: "x", payload: {} }, jr)
      expect(yield* reader.drain).toEqual([])
      expect(yield* writer.drain).toEqual([])
      // allowed write: acked, delivered to readers (self included)
      yield* writer.push("realtime:secret", "broadcast", { type: "broadcast", event: "x", payload: {} }, jw)
      expect((yield* writer.drain).map((m) => m.event)).toEqual(["broadcast", "phx_reply"])
      expect((yield* reader.drain).map((m) => m.event)).toEqual(["broadcast"])
      // presence write denied
      const t = yield* reader.push("realtime:secret", "presence", { type: "presence", event: "track", payload: {} }, jr)
      expect((yield* reader.replyTo(t)).payload).toEqual({ status: "error", response: {} })
      // a token that loses presence read: shutdown
      yield* writer.push("realtime:secret", "access_token", { access_token: yield* token("reader") }, jw)
      expect((yield* writer.drain).map((m) => [m.event, (m.payload as any).message])).toEqual([
        ["system", "You no longer have permission to read from this Channel topic: secret"],
        ["phx_close", undefined]
      ])
    }))

  it.scoped("a channel without broadcast read gets no broadcasts", () =>
    Effect.gen(function*() {
      const s = yield* server({
        policy: (claims) => ({
          broadcastRead: claims.sub === "a",
          broadcastWrite: true,
          presenceRead: true,
          presenceWrite: true
        })
      })
      const a = yield* connect(s)
      const b = yield* connect(s)
      const ja = yield* a.joined("realtime:p", {
        config: { private: true },
        access_token: yield* s.makeToken({ claims: { sub: "a" } })
      })
      yield* b.joined("realtime:p", {
        config: { private: true },
        access_token: yield* s.makeToken({ claims: { sub: "b" } })
      })
      yield* a.push("realtime:p", "broadcast", { type: "broadcast", event: "x", payload: {} }, ja)
      yield* s.dbSend({ topic: "p", event: "db", payload: { n: 1 }, id: "m1" })
      expect(yield* b.drain).toEqual([])
      const got = yield* a.drain
      expect(got.map((m) => [m.binary, m.payload])).toEqual([
        [true, { type: "broadcast", event: "db", payload: { n: 1 }, meta: { id: "m1" } }]
      ])
    }))
})

describe("HTTP broadcast API", () => {
  it.scoped("batch: 202 and text delivery (meta id), auth, validation, private skip", () =>
    Effect.gen(function*() {
      const s = yield* server({
        policy: (claims) => ({
          broadcastRead: true,
          broadcastWrite: claims.role === "service_role",
          presenceRead: true,
          presenceWrite: true
        })
      })
      const c = yield* connect(s)
      const v1 = yield* connect(s, { vsn: "1.0.0" })
      yield* c.joined("realtime:room")
      yield* c.joined("realtime:secret", { config: { private: true }, access_token: s.serviceRoleKey })
      yield* v1.joined("realtime:room")
      const post = (body: unknown, headers: Record<string, string> = { apikey: s.apiKey }) =>
        s.handleHttp({
          method: "POST",
          path: "/realtime/v1/api/broadcast?apikey=ignored",
          headers: { "Content-Type": "application/json", ...headers },
          body: JSON.stringify(body)
        })
      const ok = yield* post({
        messages: [
          { topic: "room", event: "a", payload: { n: 1 } },
          { topic: "room", event: "b", payload: { n: 2 }, id: "m-2" },
          { topic: "secret", event: "c", payload: {}, private: true }
        ]
      })
      expect(ok.status).toBe(202)
      expect(ok.body.byteLength).toBe(0)
      expect(ok.headers["x-rate-limit"]).toBe("100")
      expect((yield* c.drain).map((m) => [m.binary, m.payload])).toEqual([
        [false, { type: "broadcast", event: "a", payload: { n: 1 } }],
        [false, { type: "broadcast", event: "b", payload: { n: 2 }, meta: { id: "m-2" } }]
      ])
      expect((yield* v1.drain).map((m) => m.payload)).toEqual([
        { type: "broadcast", event: "a", payload: { n: 1 } },
        { type: "broadcast", event: "b", payload: { n: 2 }, meta: { id: "m-2" } }
      ])
      // Bearer wins over apikey; service_role may write the private topic
      const privateOk = yield* post(
        { messages: [{ topic: "secret", event: "c", payload: {}, private: true }] },
        { apikey: s.apiKey, authorization: `Bearer ${s.serviceRoleKey}` }
      )
      expect(privateOk.status).toBe(202)
      expect((yield* c.drain).map((m) => [m.topic, m.payload])).toEqual([
        ["realtime:secret", { type: "broadcast", event: "c", payload: {} }]
      ])
      expect(yield* post({ messages: [] }, {})).toMatchObject({ status: 401 })
      expect(json(yield* post({ messages: [] }, { apikey: "bad" }))).toEqual({ message: "Unauthorized" })
      const invalid = yield* post({ messages: [{ topic: "room", event: "a", payload: "x" }, { event: "b" }] })
      expect(invalid.status).toBe(422)
      expect(json(invalid)).toEqual({
        errors: { messages: [{ payload: ["is invalid"] }, { topic: ["can't be blank"], payload: ["can't be blank"] }] }
      })
      expect(json(yield* post({}))).toEqual({ errors: { messages: ["can't be blank"] } })
      const notFound = yield* s.handleHttp({ method: "GET", path: "/api/nothing", headers: {} })
      expect(notFound.status).toBe(404)
      const preflight = yield* s.handleHttp({ method: "OPTIONS", path: "/api/broadcast", headers: {} })
      expect(preflight.status).toBe(204)
      expect(preflight.headers["access-control-allow-origin"]).toBe("*")
    }))

  it.scoped("single event: JSON and octet-stream as kind 4; V1 gets JSON only; 415, 422, 403, 429", () =>
    Effect.gen(function*() {
      const s = yield* server({
        limits: { maxPayloadBytes: 50, maxEventsPerSecond: 7 },
        policy: () => ({ broadcastRead: true, broadcastWrite: false, presenceRead: true, presenceWrite: true })
      })
      const v2 = yield* connect(s)
      const v1 = yield* connect(s, { vsn: "1.0.0" })
      yield* v2.joined("realtime:room one")
      yield* v1.joined("realtime:room one")
      const post = (path: string, body: string | Uint8Array, contentType?: string) =>
        s.handleHttp({
          method: "POST",
          path,
          headers: contentType === undefined
            ? { apikey: s.apiKey }
            : { apikey: s.apiKey, "content-type": contentType },
          body
        })
      const base = `/api/broadcast/${encodeURIComponent("room one")}/events/ev`
      expect((yield* post(base, JSON.stringify({ a: 1 }), "application/json")).status).toBe(202)
      expect((yield* post(base, "[1,2]")).status).toBe(202)
      expect((yield* post(base, new Uint8Array([7, 8]), "application/octet-stream")).status).toBe(202)
      expect((yield* v2.drain).map((m) => [m.binary, m.payload])).toEqual([
        [true, { type: "broadcast", event: "ev", payload: { a: 1 } }],
        [true, { type: "broadcast", event: "ev", payload: [1, 2] }],
        [true, { type: "broadcast", event: "ev", payload: new Uint8Array([7, 8]) }]
      ])
      expect((yield* v1.drain).map((m) => m.payload)).toEqual([
        { type: "broadcast", event: "ev", payload: { a: 1 } },
        { type: "broadcast", event: "ev", payload: [1, 2] }
      ])
      const unsupported = yield* post(base, "x", "text/plain")
      expect([unsupported.status, json(unsupported)]).toEqual([415, {
        error: "Unsupported Media Type. Use application/json or application/octet-stream"
      }])
      expect(json(yield* post(base, "null", "application/json"))).toEqual({ errors: { payload: ["can't be blank"] } })
      expect(json(yield* post(base, JSON.stringify({ s: "x".repeat(100) })))).toEqual({
        errors: { payload: ["Payload size exceeds tenant limit"] }
      })
      const denied = yield* post(`${base}?private=true`, "{}")
      expect([denied.status, json(denied)]).toEqual([403, { message: "Unauthorized" }])
      const limited = yield* post(base, "{}")
      expect([limited.status, json(limited)]).toEqual([429, { message: "Too many requests" }])
    }))

  it.scoped("fetch and HttpClient answered in memory", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      yield* c.joined("realtime:room")
      const response = yield* Effect.promise(() =>
        s.fetch(`${s.httpUrl}/api/broadcast/room/events/e`, {
          method: "POST",
          headers: { apikey: s.apiKey, "content-type": "application/json" },
          body: JSON.stringify({ via: "fetch" })
        })
      )
      expect(response.status).toBe(202)
      const viaClient = yield* HttpClient.execute(
        HttpClientRequest.post(`${s.httpUrl}/realtime/v1/api/broadcast`).pipe(
          HttpClientRequest.setHeader("apikey", s.apiKey),
          HttpClientRequest.bodyUnsafeJson({ messages: [{ topic: "room", event: "e", payload: { via: "client" } }] })
        )
      ).pipe(
        Effect.provide(
          RealtimeServer.layerHttpClient.pipe(Layer.provide(Layer.succeed(RealtimeServer.RealtimeServer, s)))
        )
      )
      expect(viaClient.status).toBe(202)
      expect((yield* c.drain).map((m) => (m.payload as any).payload)).toEqual([{ via: "fetch" }, { via: "client" }])
    }))
})

describe("realtime-js in memory", () => {
  it.scopedLive("webSocketClass as transport and fetch for the REST fallback", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const client = yield* Effect.acquireRelease(
        Effect.sync(() =>
          new RealtimeJs(s.url, {
            params: { apikey: s.apiKey },
            transport: s.webSocketClass as any,
            fetch: s.fetch as any
          })
        ),
        (client) =>
          Effect.promise(async () => {
            await client.removeAllChannels()
            await client.disconnect()
          })
      )
      const channel = client.channel("room", { config: { broadcast: { self: true, ack: true } } })
      const got = yield* Deferred.make<any>()
      channel.on("broadcast", { event: "*" }, (message: any) => Deferred.unsafeDone(got, Exit.succeed(message)))
      yield* Effect.async<void, Error>((resume) => {
        channel.subscribe((status, error) => {
          if (status === "SUBSCRIBED") resume(Effect.void)
          else if (status !== "CLOSED") resume(Effect.fail(error ?? new Error(status)))
        })
      })
      const sent = yield* Effect.promise(() =>
        client.channel("room").send({ type: "broadcast", event: "rest", payload: { n: 1 } })
      )
      expect(sent).toBe("ok")
      expect(yield* Deferred.await(got)).toEqual({ type: "broadcast", event: "rest", payload: { n: 1 } })
      const [connection] = yield* s.connections
      expect(connection).toMatchObject({ transport: "memory", vsn: "2.0.0" })
    }))
})
