/**
 * The Effect 3 edition's Protocol module: its Schemas of the wire, and its serializers and binary
 * encoders as `Either`s over the core's codecs (a core issue as a `ProtocolError`). What the codecs
 * do (frames, layouts, errors, round trips, interop with realtime-js) is tested once, for both
 * editions, in `test/core/protocol.test.ts`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as fc from "fast-check"
import * as Binary from "../src/core/protocol/binary.js"
import * as Constants from "../src/core/protocol/constants.js"
import * as CoreSerializer from "../src/core/protocol/serializer.js"
import * as Protocol from "../src/Protocol.js"
import { isRealtimeError, ProtocolError } from "../src/RealtimeError.js"
import { coreOutcome, encoderArgs, envelopeish, msg, type Outcome, outcomesOf } from "./support/protocol.js"

/** An `Either` of this edition as an `Outcome`; a failure must be a `ProtocolError`. */
const outcome = (either: Either.Either<unknown, ProtocolError>): Outcome =>
  Either.match(either, {
    onRight: (value) => ({ ok: true, value }),
    onLeft: (error) => {
      expect(error).toBeInstanceOf(ProtocolError)
      return { ok: false, reason: error.reason, detail: error.detail }
    }
  })

describe("serializers and encoders: the core's, as Eithers", () => {
  it("each serializer encodes and decodes as its core serializer", () => {
    const pairs = [
      [Protocol.v1, CoreSerializer.v1],
      [Protocol.v2, CoreSerializer.v2],
      [Protocol.serverV1, CoreSerializer.serverV1],
      [Protocol.serverV2, CoreSerializer.serverV2],
      [Protocol.makeV1(), CoreSerializer.makeV1()],
      [Protocol.makeV2({ metadataKeys: ["a"] }), CoreSerializer.makeV2({ metadataKeys: ["a"] })],
      [Protocol.serializer("1.0.0"), CoreSerializer.v1],
      [Protocol.serializer("2.0.0"), CoreSerializer.v2]
    ] as const
    for (const [ours, core] of pairs) {
      expect(ours.vsn).toBe(core.vsn)
      expect(outcomesOf(ours, outcome)).toEqual(outcomesOf(core, coreOutcome))
    }
  })

  it("serializer(vsn) gives the default serializers", () => {
    expect(Protocol.serializer("1.0.0")).toBe(Protocol.v1)
    expect(Protocol.serializer("2.0.0")).toBe(Protocol.v2)
  })

  it("a failure is a ProtocolError: tag, reason, detail and message", () => {
    const decoded = Protocol.v2.decode("")
    expect(Either.isLeft(decoded)).toBe(true)
    if (Either.isLeft(decoded)) {
      expect(decoded.left).toBeInstanceOf(ProtocolError)
      expect(decoded.left._tag).toBe("ProtocolError")
      expect(decoded.left.reason).toBe("MalformedJson")
      expect(decoded.left.message).toBe(`MalformedJson: ${decoded.left.detail}`)
      expect(isRealtimeError(decoded.left)).toBe(true)
    }
  })

  it("the binary encoders encode and fail as the core's", () => {
    const pairs = [
      [Protocol.encodePhoenixPush, Binary.encodePhoenixPush, encoderArgs.phoenixPush],
      [Protocol.encodePhoenixReply, Binary.encodePhoenixReply, encoderArgs.phoenixReply],
      [Protocol.encodePhoenixBroadcast, Binary.encodePhoenixBroadcast, encoderArgs.phoenixBroadcast],
      [Protocol.encodeUserBroadcast, Binary.encodeUserBroadcast, encoderArgs.userBroadcast]
    ] as const
    for (const [ours, core, args] of pairs) {
      for (const arg of args) {
        expect(outcome((ours as (a: unknown) => Either.Either<Uint8Array, ProtocolError>)(arg))).toEqual(
          coreOutcome((core as (a: unknown) => ReturnType<typeof Binary.encodeUserBroadcast>)(arg))
        )
      }
    }
  })

  it("the wire constants are the core's", () => {
    expect(Protocol.PHOENIX_TOPIC).toBe(Constants.PHOENIX_TOPIC)
    expect(Protocol.Events).toBe(Constants.Events)
    expect(Protocol.BinaryKind).toBe(Constants.BinaryKind)
    expect(Protocol.PayloadEncoding).toBe(Constants.PayloadEncoding)
    expect(Protocol.MAX_FIELD_LENGTH).toBe(Constants.MAX_FIELD_LENGTH)
  })
})

describe("schemas", () => {
  it("V2TextFrame decodes and encodes the tuple", () => {
    const tuple = ["6", null, "realtime:room1", "system", { extension: "postgres_changes" }]
    const message = msg("6", null, "realtime:room1", "system", { extension: "postgres_changes" })
    expect(Schema.decodeUnknownSync(Protocol.V2TextFrame)(tuple)).toEqual(message)
    expect(Schema.encodeSync(Protocol.V2TextFrame)(message)).toEqual(tuple)
  })

  it("V1TextFrame omits join_ref when null on encode", () => {
    expect(Schema.encodeSync(Protocol.V1TextFrame)(msg(null, "1", "t", "e", {}))).toStrictEqual({
      topic: "t",
      event: "e",
      payload: {},
      ref: "1"
    })
  })

  it("JoinPayload models the realtime-js join", () => {
    const payload = {
      config: {
        broadcast: { self: true, ack: true, replay: { since: 1, limit: 10 } },
        presence: { key: "u1", enabled: true },
        postgres_changes: [
          { event: "INSERT", schema: "public", table: "todos", filter: "id=eq.1" },
          { event: "*", schema: "public", table: "other", select: ["id"] }
        ],
        private: true
      },
      access_token: "USERJWT",
      future: "ignored"
    }
    const decoded = Schema.decodeUnknownSync(Protocol.JoinPayload)(payload)
    expect(decoded.config.postgres_changes?.[1]?.select).toEqual(["id"])
    expect(decoded.access_token).toBe("USERJWT")
  })

  it("payload schemas tolerate unknown keys; presence metas keep their fields", () => {
    expect(Schema.decodeUnknownSync(Protocol.ReplyPayload)({ status: "ok", response: {}, extra: 1 }).status).toBe("ok")
    expect(
      Schema.decodeUnknownSync(Protocol.SystemPayload)({
        extension: "system",
        status: "error",
        message: "Too many messages per second",
        extra: true
      }).channel
    ).toBeUndefined()
    const state = Schema.decodeUnknownSync(Protocol.PresenceStatePayload)({
      ada: { metas: [{ phx_ref: "r1", phx_ref_prev: "r0", name: "Ada" }] }
    })
    expect(state.ada?.metas[0]).toEqual({ phx_ref: "r1", phx_ref_prev: "r0", name: "Ada" })
    const diff = Schema.decodeUnknownSync(Protocol.PresenceDiffPayload)({
      joins: {},
      leaves: { b: { metas: [{ phx_ref: "x" }] } }
    })
    expect(diff.leaves.b?.metas).toHaveLength(1)
    const change = Schema.decodeUnknownSync(Protocol.PostgresChangesPayload)({
      ids: [111],
      data: {
        schema: "public",
        table: "todos",
        commit_timestamp: "2024-01-01T00:00:00Z",
        type: "UPDATE",
        columns: [{ name: "id", type: "int8" }],
        record: { id: 1 },
        old_record: { id: 1 },
        errors: null
      }
    })
    expect(change.data.type).toBe("UPDATE")
    expect(
      Schema.decodeUnknownSync(Protocol.BroadcastPayload)({
        type: "broadcast",
        event: "x",
        payload: { b: 2 },
        meta: { id: "m1", replayed: true }
      }).meta?.replayed
    ).toBe(true)
    expect(Schema.decodeUnknownSync(Protocol.AccessTokenPayload)({ access_token: null }).access_token).toBeNull()
    expect(Schema.decodeUnknownSync(Protocol.HeartbeatPayload)({})).toEqual({})
    expect(
      Schema.decodeUnknownSync(Protocol.JoinReplyResponse)({
        postgres_changes: [{ id: 1, event: "*", schema: "public" }]
      }).postgres_changes
    ).toHaveLength(1)
    expect(Schema.is(Protocol.PresencePushPayload)({ type: "presence", event: "untrack" })).toBe(true)
  })
})

// -------------------------------------------------------------------------------------
// properties: the Schemas agree with the hand-written decoders
// -------------------------------------------------------------------------------------

const sameOutcome = (
  handwritten: Either.Either<Protocol.Message, ProtocolError>,
  schema: Either.Either<Protocol.Message, unknown>
) => {
  expect(Either.isRight(handwritten)).toBe(Either.isRight(schema))
  if (Either.isRight(handwritten) && Either.isRight(schema)) expect(handwritten.right).toEqual(schema.right)
}

describe("properties", () => {
  it("the hand-written v2 text decoder and V2TextFrame agree", () => {
    const decodeSchema = Schema.decodeUnknownEither(Protocol.V2TextFrame)
    fc.assert(
      fc.property(envelopeish, (value) => {
        const text = JSON.stringify(value)
        sameOutcome(Protocol.v2.decode(text), decodeSchema(JSON.parse(text)))
        sameOutcome(Protocol.serverV2.decode(text), decodeSchema(JSON.parse(text)))
      }),
      { numRuns: 1000 }
    )
  })

  it("the hand-written v1 decoder and V1TextFrame agree", () => {
    const decodeSchema = Schema.decodeUnknownEither(Protocol.V1TextFrame)
    fc.assert(
      fc.property(envelopeish, (value) => {
        const text = JSON.stringify(value)
        sameOutcome(Protocol.v1.decode(text), decodeSchema(JSON.parse(text)))
      }),
      { numRuns: 1000 }
    )
  })
})
