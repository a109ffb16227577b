/**
 * The in-process RealtimeServer's stored and database-driven messages: Postgres changes and
 * broadcast replay; in memory (FakeSocket), driven with raw frames, under TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Clock, Effect, Fiber, Schema, Stream, TestClock } from "effect"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as RealtimeServer from "../src/testing/RealtimeServer.js"
import * as RealtimeTest from "../src/testing/RealtimeTest.js"
import { broadcastConfig, connect, type Inbound, server } from "./support/realtimeServer.js"

describe("postgres changes", () => {
  it.scoped("delivered only to matching bindings, with the matching ids", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      const { reply } = yield* c.join("realtime:db", {
        config: {
          postgres_changes: [
            { event: "INSERT", schema: "public", table: "todos", filter: "owner=eq.ada" },
            { event: "*", schema: "public", table: "todos", filter: "id=in.(1,2)" },
            { event: "DELETE", schema: "public", table: "todos" }
          ]
        }
      })
      const [insertId, anyId, deleteId] = reply.response.postgres_changes.map((b: any) => b.id)
      yield* c.drain
      const emit = (change: RealtimeServer.ChangeInput) => s.emitChange(change)
      expect(yield* emit({ table: "todos", type: "INSERT", record: { id: 1, owner: "ada" } })).toBe(1)
      expect(yield* emit({ table: "todos", type: "INSERT", record: { id: 3, owner: "bob" } })).toBe(0)
      expect(yield* emit({ table: "todos", type: "update", record: { id: 2, owner: "x" }, old_record: { id: 2 } }))
        .toBe(1)
      expect(yield* emit({ table: "todos", type: "DELETE", old_record: { id: 9 } })).toBe(1)
      expect(yield* emit({ schema: "private", table: "todos", type: "DELETE", old_record: { id: 1 } })).toBe(0)
      const frames = yield* c.drain
      expect(frames.map((m) => [m.joinRef, m.event, (m.payload as any).ids])).toEqual([
        [null, "postgres_changes", [insertId, anyId]],
        [null, "postgres_changes", [anyId]],
        [null, "postgres_changes", [deleteId]]
      ])
      const first = (frames[0]!.payload as any).data
      expect(first).toEqual({
        schema: "public",
        table: "todos",
        commit_timestamp: "1970-01-01T00:00:00.000Z",
        type: "INSERT",
        columns: [{ name: "id", type: "int4" }, { name: "owner", type: "text" }],
        record: { id: 1, owner: "ada" },
        errors: null
      })
      expect(Object.keys((frames[2]!.payload as any).data)).not.toContain("record")
    }))

  it.effect("column types are inferred as a table would have them: a small integer is an int4, not a string", () =>
    Effect.gen(function*() {
      const s = yield* RealtimeServer.RealtimeServer
      const client = yield* RealtimeClient.RealtimeClient
      const binding = { event: "INSERT", schema: "public", table: "orders" } as const
      const db = yield* client.channel("db", { postgresChanges: [binding] })
      const Order = Schema.Struct({ id: Schema.String, total: Schema.Number })
      // with the default int8: "string", an int8 `total` would fail Schema.Number and be skipped
      const received = yield* db.postgresChanges(binding, Order).pipe(Stream.take(1), Stream.runCollect, Effect.fork)
      yield* db.subscribe
      yield* s.emitChange({ table: "orders", type: "INSERT", record: { id: "o-1", total: 10 } })
      // a row with its types given: what arrives first if the one above was skipped
      const columns = [{ name: "id", type: "text" }, { name: "total", type: "float8" }]
      yield* s.emitChange({ table: "orders", type: "INSERT", record: { id: "o-2", total: 11 }, columns })
      const [change] = Chunk.toReadonlyArray(yield* Fiber.join(received))
      expect(change!.new).toEqual({ id: "o-1", total: 10 })
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))

  it.scoped("inferred column types: int4 within its range, int8 beyond, float8, bool, text, arrays, jsonb", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      yield* c.joined("realtime:db", { config: { postgres_changes: [{ event: "*", schema: "public", table: "t" }] } })
      yield* c.drain
      const record = {
        small: 2_147_483_647,
        negative: -2_147_483_648,
        big: 2_147_483_648,
        huge: -9_007_199_254_740_991,
        price: 9.5,
        ok: true,
        name: "x",
        none: null,
        tags: ["a", "b"],
        ids: [1, 2],
        wide: [1, 3_000_000_000],
        empty: [],
        mixed: [1, "a"],
        doc: { a: 1 }
      }
      yield* s.emitChange({ table: "t", type: "INSERT", record })
      const [frame] = yield* c.drain
      expect((frame!.payload as any).data.columns).toEqual([
        { name: "small", type: "int4" },
        { name: "negative", type: "int4" },
        { name: "big", type: "int8" },
        { name: "huge", type: "int8" },
        { name: "price", type: "float8" },
        { name: "ok", type: "bool" },
        { name: "name", type: "text" },
        { name: "none", type: "text" },
        { name: "tags", type: "_text" },
        { name: "ids", type: "_int4" },
        { name: "wide", type: "_int8" },
        { name: "empty", type: "jsonb" },
        { name: "mixed", type: "jsonb" },
        { name: "doc", type: "jsonb" }
      ])
    }))

  it.scoped("filter parse errors arrive as system postgres_changes errors; the channel stays open", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      yield* c.joined("realtime:db", {
        config: { postgres_changes: [{ event: "*", schema: "public", table: "t", filter: "id=in.1,2" }] }
      })
      const [system] = yield* c.drain
      expect(system!.payload).toMatchObject({ extension: "postgres_changes", status: "error", channel: "db" })
      expect((system!.payload as any).message).toMatch(/parenthes/)
      expect(yield* s.emitChange({ table: "t", type: "INSERT", record: { id: 1 } })).toBe(0)
      expect((yield* s.subscribers("db")).length).toBe(1)
    }))
})

describe("replay", () => {
  const replayJoin = (replay: unknown, extra: object = {}) => ({
    config: { private: true, broadcast: { replay }, ...extra }
  })
  /** `[binary, join_ref, event, id, replayed]` of broadcast frames. */
  const summary = (frames: ReadonlyArray<Inbound>) =>
    frames.map((m) => {
      const payload = m.payload as any
      return [m.binary, m.joinRef, m.event, payload?.meta?.id ?? null, payload?.meta?.replayed ?? false]
    })

  it.scoped("JSON rows as text pushes, binary rows as kind 4, oldest first with meta; before presence_state", () =>
    Effect.gen(function*() {
      const s = yield* server()
      yield* s.dbSend({ topic: "room", event: "a", payload: { n: 1 }, id: "r1" })
      yield* TestClock.adjust("1 second")
      yield* s.dbSend({ topic: "realtime:room", event: "b", payload: new Uint8Array([1, 2]), id: "r2" })
      yield* s.dbSend({ topic: "room", event: "public", payload: {}, private: false, id: "pub" }) // not replayable
      yield* s.dbSend({ topic: "other", event: "x", payload: {}, id: "other" }) // another topic
      yield* TestClock.adjust("1 second")
      yield* s.dbSend({ topic: "room", event: "c", payload: { n: 3 }, id: "r3" })
      const c = yield* connect(s)
      const { joinRef, reply } = yield* c.join("realtime:room", {
        config: {
          private: true,
          broadcast: { replay: { since: 0 }, replication_ready: true },
          presence: { enabled: true, key: "ada" },
          postgres_changes: [{ event: "*", schema: "public", table: "t" }]
        }
      })
      expect(reply.status).toBe("ok")
      const after = yield* c.drain
      expect(after.map((m) => m.event)).toEqual([
        "broadcast",
        "broadcast",
        "broadcast",
        "presence_state",
        "system",
        "system"
      ])
      const [r1, r2, r3] = after
      expect([r1, r3].map((m) => [m.binary, m.joinRef, m.ref, m.topic, m.payload])).toEqual([
        [false, joinRef, null, "realtime:room", {
          type: "broadcast",
          event: "a",
          payload: { n: 1 },
          meta: { replayed: true, id: "r1" }
        }],
        [false, joinRef, null, "realtime:room", {
          type: "broadcast",
          event: "c",
          payload: { n: 3 },
          meta: { replayed: true, id: "r3" }
        }]
      ])
      // kind 4 carries no join_ref; its metadata is the meta
      expect([r2!.binary, r2!.topic, r2!.payload]).toEqual([true, "realtime:room", {
        type: "broadcast",
        event: "b",
        payload: new Uint8Array([1, 2]),
        meta: { replayed: true, id: "r2" }
      }])
      // the store, read-only
      const rows = yield* s.messages("room")
      expect(rows.map((row) => [row.id, row.topic, row.event, row.private, row.insertedAt])).toEqual([
        ["r1", "room", "a", true, 0],
        ["r2", "room", "b", true, 1000],
        ["pub", "room", "public", false, 1000],
        ["r3", "room", "c", true, 2000]
      ])
      expect(rows[1]!.payload).toEqual(new Uint8Array([1, 2]))
      expect((yield* s.messages()).length).toBe(5)
      expect((yield* s.state).messages("realtime:other").map((row) => row.id)).toEqual(["other"])
    }))

  it.scoped("only dbSend stores: WS and HTTP broadcasts are not replayable; generated ids are UUIDs", () =>
    Effect.gen(function*() {
      const s = yield* server()
      const c = yield* connect(s)
      const joinRef = yield* c.joined("realtime:room", broadcastConfig({ ack: true }, { private: true }))
      yield* c.push("realtime:room", "broadcast", { type: "broadcast", event: "ws", payload: {} }, joinRef)
      const response = yield* s.handleHttp({
        method: "POST",
        path: "/api/broadcast",
        headers: { apikey: s.serviceRoleKey, "content-type": "application/json" },
        body: JSON.stringify({ messages: [{ topic: "room", event: "http", payload: {}, private: true }] })
      })
      expect(response.status).toBe(202)
      expect(yield* s.messages("room")).toEqual([])
      yield* s.dbSend({ topic: "room", event: "db", payload: { ok: true } })
      const [row] = yield* s.messages("room")
      expect(row!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
      const other = yield* connect(s)
      yield* other.joined("realtime:room", replayJoin({ since: 0 }))
      expect(summary(yield* other.drain)).toEqual([[false, "1", "broadcast", row!.id, true]])
    }))

  it.scoped("limit: the newest rows, clamped to [1, 25], absent ⇒ 25; since filters by inserted_at", () =>
    Effect.gen(function*() {
      const s = yield* server()
      for (let i = 0; i < 30; i++) {
        yield* s.dbSend({ topic: "feed", event: "e", payload: { i }, id: `m${i}` })
        yield* TestClock.adjust("10 millis")
      }
      const c = yield* connect(s)
      const replayed = (replay: unknown) =>
        Effect.gen(function*() {
          yield* c.joined("realtime:feed", replayJoin(replay))
          return (yield* c.drain).map((m) => (m.payload as any).payload.i as number)
        })
      const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k)
      expect(yield* replayed({ since: 0, limit: 3 })).toEqual([27, 28, 29])
      expect(yield* replayed({ since: 0, limit: 0 })).toEqual([29])
      expect(yield* replayed({ since: 0, limit: -4 })).toEqual([29])
      expect(yield* replayed({ since: 0, limit: 100 })).toEqual(range(5, 30))
      expect(yield* replayed({ since: 0 })).toEqual(range(5, 30))
      expect(yield* replayed({ since: 0, limit: null })).toEqual(range(5, 30))
      // m20 was inserted at 200 ms: inclusive
      expect(yield* replayed({ since: 200 })).toEqual(range(20, 30))
      expect(yield* replayed({ since: 201, limit: 2 })).toEqual([28, 29])
      expect(yield* replayed({ since: 10_000 })).toEqual([])
    }))

  it.scoped("retention: rows older than 72 hours are gone (not replayed)", () =>
    Effect.gen(function*() {
      const s = yield* server()
      yield* s.dbSend({ topic: "old", event: "e", payload: {}, id: "first" })
      yield* TestClock.adjust("1 hour")
      yield* s.dbSend({ topic: "old", event: "e", payload: {}, id: "second" })
      yield* TestClock.adjust("71 hours")
      const c = yield* connect(s)
      yield* c.joined("realtime:old", replayJoin({ since: 0 }))
      expect(summary(yield* c.drain).map(([, , , id]) => id)).toEqual(["first", "second"])
      yield* TestClock.adjust("1 millis")
      yield* c.joined("realtime:old", replayJoin({ since: 0 }))
      expect(summary(yield* c.drain).map(([, , , id]) => id)).toEqual(["second"])
      expect((yield* s.messages("old")).map((row) => row.id)).toEqual(["second"])
    }))

  it.scoped("dedupe: a replayed id arriving live is not delivered again to that channel; others get it", () =>
    Effect.gen(function*() {
      const s = yield* server()
      yield* s.dbSend({ topic: "d", event: "e", payload: { v: 1 }, id: "m1" })
      const replayer = yield* connect(s)
      const plain = yield* connect(s)
      const vsn1 = yield* connect(s, { vsn: "1.0.0" })
      yield* replayer.joined("realtime:d", replayJoin({ since: 0 }))
      yield* vsn1.joined("realtime:d", replayJoin({ since: 0 }))
      yield* plain.joined("realtime:d", { config: { private: true } })
      expect(summary(yield* replayer.drain)).toEqual([[false, "1", "broadcast", "m1", true]])
      expect(summary(yield* vsn1.drain)).toEqual([[false, null, "broadcast", "m1", true]])
      expect(yield* plain.drain).toEqual([])
      // the same row's broadcast arrives late: only the channel that did not replay it gets it
      expect(yield* s.dbSend({ topic: "d", event: "e", payload: { v: 1 }, id: "m1" })).toBe(1)
      expect(yield* replayer.drain).toEqual([])
      expect(yield* vsn1.drain).toEqual([])
      expect(summary(yield* plain.drain)).toEqual([[true, null, "broadcast", "m1", false]])
      expect((yield* s.messages("d")).map((row) => row.id)).toEqual(["m1"]) // not stored twice
      // other ids reach everyone
      expect(yield* s.dbSend({ topic: "d", event: "e", payload: { v: 2 }, id: "m2" })).toBe(3)
      expect(summary(yield* replayer.drain)).toEqual([[true, null, "broadcast", "m2", false]])
      // a new join starts with what it replays: m1 and m2 again
      yield* replayer.joined("realtime:d", replayJoin({ since: 0 }))
      expect(summary(yield* replayer.drain).map(([, , , id]) => id)).toEqual(["m1", "m2"])
      // a channel joined without replay remembers nothing
      yield* replayer.joined("realtime:d", { config: { private: true } })
      expect(yield* s.dbSend({ topic: "d", event: "e", payload: { v: 1 }, id: "m1" })).toBe(2)
      expect(summary(yield* replayer.drain)).toEqual([[true, null, "broadcast", "m1", false]])
    }))

  it.scoped("vsn 1.0.0 receivers get the JSON rows as text; binary rows are skipped", () =>
    Effect.gen(function*() {
      const s = yield* server()
      yield* s.dbSend({ topic: "v1", event: "json", payload: { a: 1 }, id: "j1" })
      yield* s.dbSend({ topic: "v1", event: "bin", payload: new Uint8Array([9]), id: "b1" })
      yield* s.dbSend({ topic: "v1", event: "json", payload: [1, 2], id: "j2" })
      const c = yield* connect(s, { vsn: "1.0.0" })
      yield* c.joined("realtime:v1", replayJoin({ since: 0 }))
      const frames = yield* c.drain
      expect(frames.map((m) => [m.binary, m.ref, m.topic, m.event, m.payload])).toEqual([
        [false, null, "realtime:v1", "broadcast", {
          type: "broadcast",
          event: "json",
          payload: { a: 1 },
          meta: { replayed: true, id: "j1" }
        }],
        [false, null, "realtime:v1", "broadcast", {
          type: "broadcast",
          event: "json",
          payload: [1, 2],
          meta: { replayed: true, id: "j2" }
        }]
      ])
      // the replayed ids are remembered on vsn 1.0.0 too
      expect(yield* s.dbSend({ topic: "v1", event: "json", payload: { a: 1 }, id: "j1" })).toBe(0)
      expect(yield* c.drain).toEqual([])
    }))

  it.scoped("join errors: public channel, invalid params, no broadcast read; a replay that is not a map is ignored", () =>
    Effect.gen(function*() {
      const s = yield* server({
        policy: (claims) => ({
          broadcastRead: claims.sub !== "presence-only",
          broadcastWrite: true,
          presenceRead: true,
          presenceWrite: true
        })
      })
      yield* s.dbSend({ topic: "x", event: "e", payload: {}, id: "m1" })
      const c = yield* connect(s)
      const reason = (payload: unknown) =>
        c.join("realtime:x", payload).pipe(Effect.map(({ reply }) => {
          expect(reply.status).toBe("error")
          return reply.response.reason as string
        }))
      const publicChannel = "UnableToReplayMessages: Replay is not allowed for public channels"
      expect(yield* reason({ config: { broadcast: { replay: { since: 0 } } } })).toBe(publicChannel)
      expect(yield* reason({ config: { private: false, broadcast: { replay: null } } })).toBe(publicChannel)
      const invalid = "UnableToReplayMessages: Replay params are not valid"
      for (
        const replay of [
          {},
          { limit: 5 },
          { since: null },
          { since: "0" },
          { since: 1.5 },
          { since: 0, limit: "5" },
          { since: 0, limit: 2.5 },
          { since: 1e300 }
        ]
      ) {
        expect(yield* reason(replayJoin(replay))).toBe(invalid)
      }
      const presenceOnly = yield* s.makeToken({ claims: { sub: "presence-only" } })
      expect(yield* reason({ ...replayJoin({ since: 0 }), access_token: presenceOnly })).toBe(
        "Unauthorized: You do not have permissions to read from this Channel topic: x"
      )
      expect(yield* reason({ ...replayJoin(null), access_token: presenceOnly })).toBe(
        "Unauthorized: You do not have permissions to read from this Channel topic: x"
      )
      // without replay, presence read is enough to join
      yield* c.joined("realtime:x", { config: { private: true }, access_token: presenceOnly })
      // not a map: the join proceeds, nothing replayed
      for (const replay of [null, 5, "since"]) {
        yield* c.joined("realtime:x", replayJoin(replay))
        expect(yield* c.drain).toEqual([])
      }
      yield* c.joined("realtime:x", replayJoin({ since: 0, limit: false }))
      expect(summary(yield* c.drain)).toEqual([[false, expect.any(String), "broadcast", "m1", true]])
    }))

  it.effect("our client: replayed messages carry meta.replayed and meta.id, then live ones meta.id", () =>
    Effect.gen(function*() {
      const server = yield* RealtimeServer.RealtimeServer
      const client = yield* RealtimeClient.RealtimeClient
      yield* server.dbSend({ topic: "inbox", event: "note", payload: { text: "old" }, id: "too-old" })
      yield* TestClock.adjust("10 seconds")
      const since = yield* Clock.currentTimeMillis
      yield* server.dbSend({ topic: "inbox", event: "note", payload: { text: "a" }, id: "a" })
      yield* server.dbSend({ topic: "inbox", event: "blob", payload: new Uint8Array([7]), id: "b" })
      yield* server.dbSend({ topic: "inbox", event: "note", payload: { text: "c" }, id: "c" })
      const channel = yield* client.channel("inbox", { private: true, broadcast: { replay: { since, limit: 2 } } })
      const got = yield* channel.broadcast("*").pipe(Stream.take(3), Stream.runCollect, Effect.fork)
      yield* channel.subscribe
      yield* server.dbSend({ topic: "inbox", event: "note", payload: { text: "c" }, id: "c" }) // deduped
      yield* server.dbSend({ topic: "inbox", event: "note", payload: { text: "live" }, id: "d" })
      const messages = Chunk.toReadonlyArray(yield* Fiber.join(got))
      expect(messages.map((m) => [m.event, m.payload, m.meta])).toEqual([
        ["blob", new Uint8Array([7]), { replayed: true, id: "b" }],
        ["note", { text: "c" }, { replayed: true, id: "c" }],
        ["note", { text: "live" }, { id: "d" }]
      ])
    }).pipe(Effect.scoped, Effect.provide(RealtimeTest.layer())))
})
