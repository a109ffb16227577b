/**
 * `@supabase/realtime-js` 2.109 against the in-process RealtimeServer over real sockets on
 * 127.0.0.1 (`ws` as the transport), vsn 2.0.0 and 1.0.0.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { RealtimeChannel } from "@supabase/realtime-js"
import { RealtimeClient } from "@supabase/realtime-js"
import { Effect, Exit, Scope } from "effect"
import { WebSocket } from "ws"
import * as RealtimeServer from "../src/testing/RealtimeServer.js"

let scope: Scope.CloseableScope
let server: RealtimeServer.Server

beforeAll(async () => {
  scope = await Effect.runPromise(Scope.make())
  server = await Effect.runPromise(
    RealtimeServer.makeListen({ idleTimeout: false }).pipe(Scope.extend(scope))
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
      const ch = a.channel("db").on(
        "postgres_changes",
        { event: "INSERT", schema: "public", table: "todos", filter: "owner=eq.ada" },
        (payload) => changes.push(payload)
      )
      await subscribed(ch)
      await until((s) => s.subscribers("db")[0]?.postgresSubscribed || undefined)
      await Effect.runPromise(server.emitChange({ table: "todos", type: "INSERT", record: { id: 1, owner: "bob" } }))
      await Effect.runPromise(server.emitChange({ table: "todos", type: "INSERT", record: { id: 2, owner: "ada" } }))
      await Effect.runPromise(server.emitChange({ table: "other", type: "INSERT", record: { id: 3, owner: "ada" } }))
      await until((s) => s.stats.changesDelivered >= 1 || undefined)
      await new Promise<void>((resolve) => {
        const check = () => changes.length >= 1 ? resolve() : setTimeout(check, 5)
        check()
      })
      expect(changes).toHaveLength(1)
      expect(changes[0]).toMatchObject({ eventType: "INSERT", table: "todos", new: { id: 2, owner: "ada" } })
    } finally {
      await cleanup()
    }
  })
})
