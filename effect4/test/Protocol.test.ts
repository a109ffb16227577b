/**
 * The Effect 4 edition's Protocol module: its serializers and binary encoders as `Result`s over the
 * core's codecs (a core issue as a `ProtocolError`), and its Schemas of the wire. What the codecs do (frames,
 * layouts, errors, round trips, interop with realtime-js) is tested once, for both editions, in
 * `test/core/protocol.test.ts` at the repository root.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import * as fc from "fast-check"
import * as Binary from "../../src/core/protocol/binary.js"
import * as Constants from "../../src/core/protocol/constants.js"
import * as CoreSerializer from "../../src/core/protocol/serializer.js"
import { coreOutcome, encoderArgs, envelopeish, type Outcome, outcomesOf } from "../../test/support/protocol.js"
import * as Protocol from "../src/Protocol.js"
import { isRealtimeError, ProtocolError } from "../src/RealtimeError.js"

/** A `Result` of this edition as an `Outcome`; a failure must be a `ProtocolError`. */
const outcome = (result: Result.Result<unknown, ProtocolError>): Outcome => {
  if (Result.isSuccess(result)) return { ok: true, value: result.success }
  expect(result.failure).toBeInstanceOf(ProtocolError)
  return { ok: false, reason: result.failure.reason, detail: result.failure.detail }
}

describe("serializers and encoders: the core's, as Results", () => {
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
    const message = { joinRef: "1", ref: "2", topic: "realtime:room", event: "phx_join", payload: { config: {} } }
    const frame = Protocol.serializer("2.0.0").encode(message)
    assert.isTrue(Result.isSuccess(frame))
    assert.deepStrictEqual(Result.getOrThrow(Protocol.v2.decode(Result.getOrThrow(frame))), message)
    const bad = Protocol.v2.decode("not json")
    assert.isTrue(Result.isFailure(bad))
    if (Result.isFailure(bad)) {
      assert.instanceOf(bad.failure, ProtocolError)
      assert.strictEqual(bad.failure._tag, "ProtocolError")
      assert.strictEqual(bad.failure.reason, "MalformedJson")
      assert.strictEqual(bad.failure.message, `MalformedJson: ${bad.failure.detail}`)
      assert.isTrue(isRealtimeError(bad.failure))
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
        expect(outcome((ours as (a: unknown) => Result.Result<Uint8Array, ProtocolError>)(arg))).toEqual(
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
    const tuple = ["6", null, "realtime:room1", "system", { extension: "postgres_changes" }] as const
    const message = {
      joinRef: "6",
      ref: null,
      topic: "realtime:room1",
      event: "system",
      payload: { extension: "postgres_changes" }
    }
    assert.deepStrictEqual(Schema.decodeUnknownSync(Protocol.V2TextFrame)([...tuple, "ignored"]), message)
    assert.deepStrictEqual(Schema.encodeSync(Protocol.V2TextFrame)(message), tuple)
  })

  it("V1TextFrame omits join_ref when null on encode", () => {
    const message = { joinRef: null, ref: "1", topic: "t", event: "e", payload: {} }
    assert.deepStrictEqual(Schema.encodeSync(Protocol.V1TextFrame)(message), {
      topic: "t",
      event: "e",
      payload: {},
      ref: "1"
    })
    assert.isTrue(Result.isFailure(Schema.decodeUnknownResult(Protocol.V1TextFrame)({ topic: "t", event: "e" })))
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
        postgres_changes_options: { wait: true, timeout: 5000 },
        private: true
      },
      access_token: "USERJWT",
      future: "ignored"
    }
    const decoded = Schema.decodeUnknownSync(Protocol.JoinPayload)(payload)
    assert.deepStrictEqual(decoded.config.postgres_changes?.[1]?.select, ["id"])
    assert.deepStrictEqual(decoded.config.postgres_changes_options, { wait: true, timeout: 5000 })
    assert.strictEqual(decoded.access_token, "USERJWT")
    const strict = Schema.decodeUnknownResult(Protocol.JoinPayload, { onExcessProperty: "error" })
    assert.isTrue(Result.isFailure(strict(payload)))
    const { future: _, ...known } = payload
    assert.isTrue(Result.isSuccess(strict(known)))
    assert.deepStrictEqual<unknown>(
      Schema.encodeUnknownSync(Protocol.JoinPayload)(Schema.decodeUnknownSync(Protocol.JoinPayload)(known)),
      known
    )
    assert.isTrue(
      Result.isFailure(Schema.decodeUnknownResult(Protocol.JoinPayload)({ config: { postgres_changes: [{}] } }))
    )
  })

  it("payload schemas tolerate unknown keys; presence metas keep their fields", () => {
    expect(Schema.decodeUnknownSync(Protocol.ReplyPayload)({ status: "ok", response: {}, extra: 1 }).status).toBe("ok")
    const state = Schema.decodeUnknownSync(Protocol.PresenceStatePayload)({
      ada: { metas: [{ phx_ref: "r1", phx_ref_prev: "r0", name: "Ada" }] }
    })
    expect(state.ada?.metas[0]).toEqual({ phx_ref: "r1", phx_ref_prev: "r0", name: "Ada" })
    expect(Schema.is(Protocol.PresencePushPayload)({ type: "presence", event: "untrack" })).toBe(true)
    expect(Schema.decodeUnknownSync(Protocol.HeartbeatPayload)({})).toEqual({})
    expect(Schema.decodeUnknownSync(Protocol.AccessTokenPayload)({ access_token: null }).access_token).toBeNull()
    expect(
      Schema.decodeUnknownSync(Protocol.SystemPayload)({
        extension: "system",
        status: "error",
        message: "Too many messages per second",
        extra: true
      }).channel
    ).toBeUndefined()
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
    expect(
      Schema.decodeUnknownSync(Protocol.JoinReplyResponse)({
        postgres_changes: [{ id: 1, event: "*", schema: "public" }]
      }).postgres_changes
    ).toHaveLength(1)
  })
})

// -------------------------------------------------------------------------------------
// properties: the Schemas agree with the hand-written decoders
// -------------------------------------------------------------------------------------

const sameOutcome = (
  handwritten: Result.Result<Protocol.Message, ProtocolError>,
  schema: Result.Result<Protocol.Message, unknown>
) => {
  expect(Result.isSuccess(handwritten)).toBe(Result.isSuccess(schema))
  if (Result.isSuccess(handwritten) && Result.isSuccess(schema)) expect(handwritten.success).toEqual(schema.success)
}

describe("properties", () => {
  it("the hand-written v2 text decoder and V2TextFrame agree", () => {
    const decodeSchema = Schema.decodeUnknownResult(Protocol.V2TextFrame)
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
    const decodeSchema = Schema.decodeUnknownResult(Protocol.V1TextFrame)
    fc.assert(
      fc.property(envelopeish, (value) => {
        const text = JSON.stringify(value)
        sameOutcome(Protocol.v1.decode(text), decodeSchema(JSON.parse(text)))
      }),
      { numRuns: 1000 }
    )
  })
})
