/**
 * Protocol's Schemas are the model of the wire: everything the client builds must be an instance of
 * them. A property test over channel configs for the join payload, and the frames a client writes
 * (join, track, untrack, access_token, broadcast) decoded with their Schemas.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Queue, Result, Schema } from "effect"
import { Socket } from "effect/socket"
import * as fc from "fast-check"
import * as Config from "../../src/core/channel/config.js"
import * as AccessToken from "../src/AccessToken.js"
import * as PostgresChanges from "../src/PostgresChanges.js"
import * as Protocol from "../src/Protocol.js"
import type * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as FakeSocket from "../src/testing/FakeSocket.js"

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

  it.effect("join, track, untrack, access_token and broadcast frames decode with their Schemas", () =>
    Effect.gen(function*() {
      const { constructor, server } = yield* FakeSocket.make
      const layer = RealtimeClient.layer({ url: "ws://realtime.test/socket", apiKey: "anon" }).pipe(
        Layer.provide(Layer.succeed(Socket.WebSocketConstructor, constructor)),
        Layer.provide(AccessToken.layerStatic("T1"))
      )
      const client = Context.get(yield* Layer.build(layer).pipe(Effect.orDie), RealtimeClient.RealtimeClient)
      const channel = yield* client.channel("room", {
        presence: { key: "ada" },
        postgresChanges: [{ event: "INSERT", schema: "public", table: "todos" }],
        postgresChangesOptions: { wait: true }
      })
      const subscribing = yield* Effect.forkChild(channel.subscribe)
      const connection = yield* Queue.take(server.connections)
      const frames: Array<Protocol.Message> = []
      const next = Effect.map(Queue.take(connection.sent), (frame) => {
        const message = Result.getOrThrow(Protocol.serverV2.decode(frame))
        frames.push(message)
        return message
      })
      const join = yield* next
      yield* connection.send(Result.getOrThrow(Protocol.serverV2.encode({
        joinRef: join.joinRef,
        ref: join.ref,
        topic: join.topic,
        event: "phx_reply",
        payload: {
          status: "ok",
          response: { postgres_changes: [{ id: 1, event: "INSERT", schema: "public", table: "todos" }] }
        }
      })))
      yield* Fiber.join(subscribing)
      yield* Effect.forkChild(channel.track({ online: true }))
      yield* next
      yield* Effect.forkChild(channel.untrack())
      yield* next
      yield* client.setAuth("T2")
      yield* next
      yield* channel.send("ping", { n: 1 })
      yield* next
      const strict = { onExcessProperty: "error" } as const
      const check = (schema: Schema.ConstraintDecoder<unknown>, event: string) => {
        const frame = frames.find((m) => m.event === event)!
        const decoded = Schema.decodeUnknownResult(schema, strict)(frame.payload)
        assert.isTrue(
          Result.isSuccess(decoded),
          `${event}: ${Result.isFailure(decoded) ? decoded.failure.message : ""}`
        )
      }
      check(Protocol.JoinPayload, "phx_join")
      check(Protocol.AccessTokenPayload, "access_token")
      check(Protocol.BroadcastPayload, "broadcast")
      const presence = frames.filter((m) => m.event === "presence")
      assert.strictEqual(presence.length, 2)
      for (const frame of presence) {
        assert.isTrue(Result.isSuccess(Schema.decodeUnknownResult(Protocol.PresencePushPayload, strict)(frame.payload)))
      }
    }))
})
