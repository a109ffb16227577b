/**
 * Protocol's Schemas are the model of the wire: everything the client builds must be an instance of
 * them. A property test over channel configs for the join payload; one over what a user gives a
 * client (presence metas, tokens, broadcast events and payloads, both versions), decoding every frame
 * the client writes (join, track, untrack, access_token, broadcast) with its Schema; and type checks
 * that the plain wire types of the core are the Schemas' types (or, where the core reads more
 * leniently, admit them).
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Queue, Result, Schema } from "effect"
import { Socket } from "effect/socket"
import * as fc from "fast-check"
import { expectTypeOf } from "vitest"
import * as Config from "../../src/core/channel/config.js"
import type * as Bindings from "../../src/core/postgres/bindings.js"
import type * as Convert from "../../src/core/postgres/convert.js"
import type * as Sync from "../../src/core/presence/sync.js"
import * as AccessToken from "../src/AccessToken.js"
import * as PostgresChanges from "../src/PostgresChanges.js"
import type * as Presence from "../src/Presence.js"
import * as Protocol from "../src/Protocol.js"
import type * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as FakeSocket from "../src/testing/FakeSocket.js"
import type * as Transport from "../src/Transport.js"

const binding: fc.Arbitrary<PostgresChanges.Binding> = fc.record({
  event: fc.constantFrom("*" as const, "INSERT" as const, "UPDATE" as const, "DELETE" as const),
  schema: fc.constantFrom("public", "private"),
  table: fc.option(fc.constantFrom("todos", "orders"), { nil: undefined }),
  filter: fc.option(fc.constantFrom("id=eq.1", "owner=in.(ada,bob)"), { nil: undefined })
}, { requiredKeys: ["event", "schema"] })

const config: fc.Arbitrary<RealtimeChannel.ChannelConfig> = fc.record({
  broadcast: fc.record({
    self: fc.boolean(),
    ack: fc.boolean(),
    replay: fc.record({ since: fc.nat(), limit: fc.option(fc.integer({ min: 1, max: 25 }), { nil: undefined }) }, {
      requiredKeys: ["since"]
    }),
    replicationReady: fc.boolean()
  }, { requiredKeys: [] }),
  presence: fc.record({ key: fc.string({ minLength: 1 }), enabled: fc.boolean() }, { requiredKeys: [] }),
  postgresChanges: fc.array(binding, { maxLength: 3 }),
  postgresChangesOptions: fc.record({ wait: fc.boolean(), timeout: fc.nat() }, { requiredKeys: [] }),
  private: fc.boolean()
}, { requiredKeys: [] })

/** What a user gives a subscribed channel and its client, one step at a time. */
type Action =
  | { readonly _tag: "track"; readonly meta: Record<string, unknown> }
  | { readonly _tag: "untrack" }
  | { readonly _tag: "setAuth"; readonly token: string | null }
  | {
    readonly _tag: "send"
    readonly event: string
    readonly payload: unknown
    readonly persist: boolean | { readonly ttl: number } | undefined
  }

const json = fc.jsonValue({ maxDepth: 2 })

const actions: fc.Arbitrary<ReadonlyArray<Action>> = fc.array(
  fc.oneof(
    fc.record({
      _tag: fc.constant("track" as const),
      meta: fc.dictionary(fc.string({ maxLength: 8 }), json, { maxKeys: 4 })
    }),
    fc.constant({ _tag: "untrack" as const }),
    fc.record({
      _tag: fc.constant("setAuth" as const),
      token: fc.oneof(fc.constant(null), fc.constantFrom("T1", "T2"), fc.string({ minLength: 1, maxLength: 40 }))
    }),
    fc.record({
      _tag: fc.constant("send" as const),
      event: fc.string({ minLength: 1, maxLength: 20 }),
      payload: fc.oneof(json, fc.uint8Array({ maxLength: 16 })),
      persist: fc.option(fc.oneof(fc.boolean(), fc.record({ ttl: fc.nat() })), { nil: undefined })
    })
  ),
  { minLength: 1, maxLength: 6 }
)

/** The Schema of each event a client sends. */
const schemas: Record<string, Schema.Codec<unknown, unknown>> = {
  phx_join: Protocol.JoinPayload,
  presence: Protocol.PresencePushPayload,
  access_token: Protocol.AccessTokenPayload,
  broadcast: Protocol.BroadcastPayload
}

/** Subscribes a client (vsn `vsn`, broadcast `ack`) and runs `actions`, checking each frame it writes. */
const writes = (vsn: Protocol.Vsn, ack: boolean, actions: ReadonlyArray<Action>) =>
  Effect.gen(function*() {
    const { constructor, server } = yield* FakeSocket.make
    const layer = RealtimeClient.layer({ url: "ws://realtime.test/socket", apiKey: "anon", vsn }).pipe(
      Layer.provide(Layer.succeed(Socket.WebSocketConstructor, constructor)),
      Layer.provide(AccessToken.layerStatic("T1"))
    )
    const client = Context.get(yield* Layer.build(layer).pipe(Effect.orDie), RealtimeClient.RealtimeClient)
    const channel = yield* client.channel("room", {
      broadcast: { ack },
      presence: { key: "ada" },
      postgresChanges: [{ event: "INSERT", schema: "public", table: "todos", filter: "id=eq.1" }]
    })
    const subscribing = yield* Effect.forkChild(channel.subscribe)
    const connection = yield* Queue.take(server.connections)
    const codec = Protocol.serverV2.vsn === vsn ? Protocol.serverV2 : Protocol.serverV1
    // the next frame the client wrote, checked against the Schema of its event
    const next = Effect.map(Queue.take(connection.sent), (frame) => {
      const message = Result.getOrThrow(codec.decode(frame))
      const schema = schemas[message.event]!
      assert.isDefined(schema, `a Schema for '${message.event}'`)
      const decoded = Schema.decodeUnknownResult(schema, { onExcessProperty: "error" })(message.payload)
      assert.isTrue(
        Result.isSuccess(decoded),
        `${message.event}: ${Result.isFailure(decoded) ? decoded.failure.message : ""}`
      )
      assert.deepStrictEqual(Schema.encodeSync(schema)(Result.getOrThrow(decoded)), message.payload)
      return message
    })
    const replyOk = (to: Protocol.Message, response: unknown) =>
      connection.send(Result.getOrThrow(codec.encode({
        joinRef: to.joinRef,
        ref: to.ref,
        topic: to.topic,
        event: "phx_reply",
        payload: { status: "ok", response }
      })))
    const join = yield* next
    const sent = (join.payload as Protocol.JoinPayload).config.postgres_changes ?? []
    yield* replyOk(join, { postgres_changes: sent.map((binding, i) => ({ id: i + 1, ...binding })) })
    yield* Fiber.join(subscribing)
    let token: string | null = "T1"
    for (const action of actions) {
      switch (action._tag) {
        case "track":
        case "untrack": {
          const fiber = yield* Effect.forkChild(
            action._tag === "track" ? channel.track(action.meta) : channel.untrack()
          )
          yield* replyOk(yield* next, {})
          yield* Fiber.join(fiber)
          break
        }
        case "setAuth": {
          yield* client.setAuth(action.token)
          // a token equal to the one sent is not sent again
          if (action.token !== token) assert.strictEqual((yield* next).event, "access_token")
          token = action.token
          break
        }
        case "send": {
          const payload = vsn === "1.0.0" && action.payload instanceof Uint8Array ? [...action.payload] : action.payload
          const persist = vsn === "1.0.0" ? undefined : action.persist
          const fiber = yield* Effect.forkChild(channel.send(action.event, payload, { persist }))
          const message = yield* next
          if (ack) yield* replyOk(message, {})
          yield* Fiber.join(fiber)
          break
        }
      }
    }
  })

describe("the client's frames are instances of Protocol's Schemas", () => {
  it("property: every join payload the client builds decodes with Protocol.JoinPayload, unchanged", () => {
    fc.assert(
      fc.property(
        config,
        fc.option(fc.string(), { nil: undefined }),
        fc.option(fc.nat(), { nil: undefined }),
        (c, token, replaySince) => {
          const payload = Config.joinPayload(c, {
            wireBindings: (c.postgresChanges ?? []).map(PostgresChanges.toWire),
            presenceEnabled: c.presence?.enabled ?? c.presence !== undefined,
            token,
            replaySince
          })
          const decoded = Schema.decodeUnknownResult(Protocol.JoinPayload, { onExcessProperty: "error" })(payload)
          assert.isTrue(Result.isSuccess(decoded), Result.isFailure(decoded) ? decoded.failure.message : "")
          assert.deepStrictEqual(Schema.encodeSync(Protocol.JoinPayload)(Result.getOrThrow(decoded)), payload)
        }
      ),
      { numRuns: 500 }
    )
  })

  // fast-check's runner (`it.effect.prop` takes Effect's own arbitraries), each run under this test's
  // services (TestClock)
  it.effect("property: every frame a client writes for what a user gives it decodes with its Schema, unchanged", () =>
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.constantFrom("1.0.0" as const, "2.0.0" as const),
            fc.boolean(),
            actions,
            (vsn, ack, actions) => Effect.runPromiseWith(context)(Effect.scoped(writes(vsn, ack, actions)))
          ),
          { numRuns: 60 }
        )
      )
    }))

  it("the core's plain wire types are the Schemas' types, or admit them where the core reads leniently", () => {
    // the same data: each is assignable to the other
    expectTypeOf<Sync.RawMeta>().toMatchTypeOf<Protocol.PresenceMetaPayload>()
    expectTypeOf<Protocol.PresenceMetaPayload>().toMatchTypeOf<Sync.RawMeta>()
    expectTypeOf<Sync.RawState>().toMatchTypeOf<Protocol.PresenceStatePayload>()
    expectTypeOf<Protocol.PresenceStatePayload>().toMatchTypeOf<Sync.RawState>()
    expectTypeOf<Sync.RawDiff>().toMatchTypeOf<Protocol.PresenceDiffPayload>()
    expectTypeOf<Protocol.PresenceDiffPayload>().toMatchTypeOf<Sync.RawDiff>()
    expectTypeOf<Bindings.WireBinding>().toMatchTypeOf<Protocol.PostgresChangesFilter>()
    expectTypeOf<Protocol.PostgresChangesFilter>().toMatchTypeOf<Bindings.WireBinding>()
    // the edition's names for them are the Schemas' types
    expectTypeOf<Presence.RawMeta>().toEqualTypeOf<Protocol.PresenceMetaPayload>()
    expectTypeOf<Presence.RawState>().toEqualTypeOf<Protocol.PresenceStatePayload>()
    expectTypeOf<Presence.RawDiff>().toEqualTypeOf<Protocol.PresenceDiffPayload>()
    expectTypeOf<PostgresChanges.WireBinding>().toEqualTypeOf<Protocol.PostgresChangesFilter>()
    expectTypeOf<FakeSocket.Frame>().toEqualTypeOf<Protocol.Frame>()
    // what the client reads admits every instance of the Schema (and more: nulls, any status)
    expectTypeOf<Protocol.PostgresChangesPayload["data"]>().toMatchTypeOf<Convert.RawChange>()
    expectTypeOf<Protocol.PostgresChangesBinding>().toMatchTypeOf<PostgresChanges.ReplyEntry>()
    expectTypeOf<Protocol.ReplyPayload>().toMatchTypeOf<Transport.Reply>()
    expectTypeOf<Required<Protocol.SystemPayload>>().toMatchTypeOf<RealtimeChannel.SystemMessage>()
  })
})
