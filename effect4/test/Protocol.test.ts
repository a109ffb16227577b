/**
 * The Effect 4 edition's Protocol module: its serializers and binary encoders as `Result`s over the
 * core's codecs (a core issue as a `ProtocolError`), and its Schemas of the wire (with
 * `foundation.test.ts`, which has the envelope and join Schemas). What the codecs do (frames,
 * layouts, errors, round trips, interop with realtime-js) is tested once, for both editions, in
 * `test/core/protocol.test.ts` at the repository root.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import * as fc from "fast-check"
import * as Binary from "../../src/core/protocol/binary.js"
import * as Constants from "../../src/core/protocol/constants.js"
import * as CoreSerializer from "../../src/core/protocol/serializer.js"
import { coreOutcome, encoderArgs, envelopeish, type Outcome, outcomesOf } from "../../test/support/protocol.js"
import * as Protocol from "../src/Protocol.js"
import { ProtocolError } from "../src/RealtimeError.js"

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
  it("payload schemas tolerate unknown keys: system, presence diff, Postgres changes, broadcast, join reply", () => {
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
