/**
 * The wire codecs of the core (`src/core/protocol/`), tested once for both editions, by example: the
 * vsn 1.0.0 and 2.0.0 serializers of both sides (text and binary kinds 0 to 4), the server-side
 * binary encoders, their failures as `ProtocolIssue`s, and round trips. Properties and the interop
 * with realtime-js are in `protocol.properties.test.ts`. Plain TypeScript over the core's `Result`:
 * no Effect. Each edition's `test/Protocol.test.ts` tests only its surface (its Schemas, and its
 * serializers and encoders as `Either` / `Result` over these).
 */
import { describe, expect, it } from "vitest"
import * as Binary from "../../src/core/protocol/binary.js"
import { Events, PHOENIX_TOPIC } from "../../src/core/protocol/constants.js"
import { type Frame, type Message, ProtocolIssue } from "../../src/core/protocol/model.js"
import * as Serializer from "../../src/core/protocol/serializer.js"
import type * as Result from "../../src/core/result.js"
import { bytes, coreOutcome, encoderArgs, hex, left, msg, outcomesOf, reason, right } from "../support/protocol.js"

// -------------------------------------------------------------------------------------
// vsn 1.0.0
// -------------------------------------------------------------------------------------

describe("v1", () => {
  it("encodes objects in realtime-js key order, join_ref omitted when null", () => {
    expect(right(Serializer.v1.encode(msg("6", "6", "realtime:room2", "phx_join", { a: 1 })))).toBe(
      `{"topic":"realtime:room2","event":"phx_join","payload":{"a":1},"ref":"6","join_ref":"6"}`
    )
    expect(right(Serializer.v1.encode(msg(null, "12", "phoenix", "heartbeat", {})))).toBe(
      `{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"12"}`
    )
  })

  it("server encode never carries join_ref", () => {
    expect(right(Serializer.serverV1.encode(msg("6", "6", "realtime:a", "phx_reply", { status: "ok", response: {} }))))
      .toBe(`{"topic":"realtime:a","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"6"}`)
  })

  it("decodes with a missing join_ref or ref as null", () => {
    expect(right(Serializer.v1.decode(`{"topic":"t","event":"e","payload":{"x":1},"ref":"3"}`))).toEqual(
      msg(null, "3", "t", "e", { x: 1 })
    )
    expect(right(Serializer.v1.decode(`{"topic":"t","event":"e","payload":null}`))).toEqual(
      msg(null, null, "t", "e", null)
    )
    expect(right(Serializer.serverV1.decode(`{"topic":"t","event":"e","payload":[],"ref":null,"join_ref":"1"}`)))
      .toEqual(msg("1", null, "t", "e", []))
  })

  it("rejects binary frames, bad JSON and bad shapes", () => {
    expect(reason(Serializer.v1.decode(new Uint8Array([4, 0, 0, 0, 1])))).toBe("InvalidEnvelope")
    expect(reason(Serializer.serverV1.decode(new Uint8Array([3])))).toBe("InvalidEnvelope")
    expect(reason(Serializer.v1.decode(`{"topic":`))).toBe("MalformedJson")
    expect(reason(Serializer.v1.decode(`[null,null,"t","e",{}]`))).toBe("InvalidEnvelope")
    expect(reason(Serializer.v1.decode(`null`))).toBe("InvalidEnvelope")
    expect(reason(Serializer.v1.decode(`{"topic":1,"event":"e","payload":{}}`))).toBe("InvalidEnvelope")
    expect(reason(Serializer.v1.decode(`{"topic":"t","event":"e"}`))).toBe("InvalidEnvelope")
    expect(reason(Serializer.v1.decode(`{"topic":"t","event":"e","payload":{},"ref":7}`))).toBe("InvalidEnvelope")
    expect(reason(Serializer.v1.decode(`{"topic":"t","event":"e","payload":{},"join_ref":false}`))).toBe(
      "InvalidEnvelope"
    )
  })

  it("refuses binary payloads and unencodable payloads", () => {
    expect(reason(Serializer.v1.encode(msg(null, "1", "t", "e", new Uint8Array([1]))))).toBe("UnsupportedPayload")
    expect(
      reason(
        Serializer.v1.encode(
          msg("1", "2", "t", "broadcast", { type: "broadcast", event: "x", payload: new ArrayBuffer(2) })
        )
      )
    ).toBe("UnsupportedPayload")
    expect(reason(Serializer.v1.encode(msg(null, "1", "t", "e", { n: 1n })))).toBe("UnsupportedPayload")
    expect(reason(Serializer.serverV1.encode(msg(null, "1", "t", "e", new Uint8Array([1]))))).toBe("UnsupportedPayload")
  })

  it("sends broadcasts as text", () => {
    const message = msg("1", "2", "realtime:t", "broadcast", { type: "broadcast", event: "x", payload: { a: 1 } })
    const frame = right(Serializer.v1.encode(message))
    expect(typeof frame).toBe("string")
    expect(right(Serializer.serverV1.decode(frame))).toEqual(message)
  })
})

// -------------------------------------------------------------------------------------
// vsn 2.0.0 text
// -------------------------------------------------------------------------------------

describe("v2 text", () => {
  it("encodes JSON arrays (observed heartbeat and join)", () => {
    expect(right(Serializer.v2.encode(msg(null, "12", PHOENIX_TOPIC, Events.heartbeat, {})))).toBe(
      `[null,"12","phoenix","heartbeat",{}]`
    )
    expect(
      right(Serializer.v2.encode(msg("6", "9", "realtime:room1", "presence", {
        type: "presence",
        event: "track",
        payload: { online: true }
      })))
    ).toBe(`["6","9","realtime:room1","presence",{"type":"presence","event":"track","payload":{"online":true}}]`)
  })

  it("decodes JSON arrays", () => {
    expect(right(Serializer.v2.decode(`["6","6","realtime:room1","phx_reply",{"status":"ok","response":{}}]`))).toEqual(
      msg("6", "6", "realtime:room1", "phx_reply", { status: "ok", response: {} })
    )
    expect(right(Serializer.v2.decode(`[null,null,"t","e",null]`))).toEqual(msg(null, null, "t", "e", null))
  })

  it("ignores elements after the fifth, as Phoenix's V2 serializer does", () => {
    const decoded = Serializer.v2.decode(`["1","2","t","e",{"a":1},"extra",3]`)
    expect(right(decoded)).toEqual({ joinRef: "1", ref: "2", topic: "t", event: "e", payload: { a: 1 } })
  })

  it("reports bad JSON as MalformedJson and bad shapes as InvalidEnvelope", () => {
    expect(reason(Serializer.v2.decode(``))).toBe("MalformedJson")
    expect(reason(Serializer.v2.decode(`[null,null,"t","e",`))).toBe("MalformedJson")
    for (
      const frame of [
        `{}`,
        `"x"`,
        `null`,
        `[null,null,"t","e"]`,
        `[1,null,"t","e",{}]`,
        `[null,2,"t","e",{}]`,
        `[null,null,null,"e",{}]`,
        `[null,null,"t",["e"],{}]`
      ]
    ) {
      expect(reason(Serializer.v2.decode(frame)), frame).toBe("InvalidEnvelope")
      expect(reason(Serializer.serverV2.decode(frame)), frame).toBe("InvalidEnvelope")
    }
  })

  it("reports payloads JSON cannot encode as UnsupportedPayload", () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(reason(Serializer.v2.encode(msg(null, "1", "t", "e", cyclic)))).toBe("UnsupportedPayload")
    expect(reason(Serializer.v2.encode(msg(null, "1", "t", "e", { n: 1n })))).toBe("UnsupportedPayload")
    expect(reason(Serializer.serverV2.encode(msg(null, "1", "t", "e", { n: 1n })))).toBe("UnsupportedPayload")
  })

  it("rejects messages whose envelope fields have the wrong type", () => {
    const bad = { joinRef: 1, ref: null, topic: "t", event: "e", payload: {} } as unknown as Message
    expect(reason(Serializer.v2.encode(bad))).toBe("InvalidEnvelope")
    expect(reason(Serializer.v1.encode(bad))).toBe("InvalidEnvelope")
    expect(reason(Serializer.serverV2.encode(bad))).toBe("InvalidEnvelope")
  })
})

// -------------------------------------------------------------------------------------
// vsn 2.0.0 binary
// -------------------------------------------------------------------------------------

describe("v2 kind 3 (user broadcast push)", () => {
  it("matches realtime-js byte for byte: JSON payload, no metadata", () => {
    const frame = right(
      Serializer.v2.encode(msg("6", "7", "realtime:room1", "broadcast", {
        type: "broadcast",
        event: "x",
        payload: { hello: "wörld" }
      }))
    )
    expect(hex(frame)).toBe(
      hex(bytes([0x03, 0x01, 0x01, 0x0e, 0x01, 0x00, 0x01], "6", "7", "realtime:room1", "x", `{"hello":"wörld"}`))
    )
  })

  it("matches realtime-js byte for byte: binary payload", () => {
    const expected = hex(
      bytes([0x03, 0x01, 0x01, 0x0e, 0x03, 0x00, 0x00], "6", "8", "realtime:room1", "bin", [1, 2, 3])
    )
    const make = (payload: unknown) =>
      Serializer.v2.encode(msg("6", "8", "realtime:room1", "broadcast", { type: "broadcast", event: "bin", payload }))
    expect(hex(right(make(new Uint8Array([1, 2, 3]))))).toBe(expected)
    expect(hex(right(make(new Uint8Array([1, 2, 3]).buffer)))).toBe(expected)
  })

  it("matches realtime-js byte for byte: persist metadata", () => {
    const frame = right(
      Serializer.v2.encode(msg("1", "2", "realtime:t", "broadcast", {
        type: "broadcast",
        event: "ev",
        payload: { z: 1 },
        persist: { ttl: 5 }
      }))
    )
    expect(hex(frame)).toBe(
      hex(
        bytes(
          [0x03, 0x01, 0x01, 0x0a, 0x02, 0x15, 0x01],
          "1",
          "2",
          "realtime:t",
          "ev",
          `{"persist":{"ttl":5}}`,
          `{"z":1}`
        )
      )
    )
  })

  it("sends null refs as empty fields and a missing user payload as {}", () => {
    const frame = right(Serializer.v2.encode(msg(null, null, "t", "broadcast", { type: "broadcast", event: "e" })))
    expect(hex(frame)).toBe(hex(bytes([3, 0, 0, 1, 1, 0, 1], "t", "e", "{}")))
  })

  it("only carries allow-listed metadata keys, in payload order", () => {
    const payload = { type: "broadcast", event: "e", b: 2, payload: 1, a: 1, other: true, persist: undefined }
    const none = right(
      Serializer.makeV2({ metadataKeys: [] }).encode(msg("1", "2", "t", "broadcast", { ...payload, persist: true }))
    )
    expect(hex(none)).toBe(hex(bytes([3, 1, 1, 1, 1, 0, 1], "1", "2", "t", "e", "1")))
    const two = right(Serializer.makeV2({ metadataKeys: ["a", "b"] }).encode(msg("1", "2", "t", "broadcast", payload)))
    expect(hex(two)).toBe(hex(bytes([3, 1, 1, 1, 1, 13, 1], "1", "2", "t", "e", `{"b":2,"a":1}`, "1")))
    const undefinedPersist = right(Serializer.v2.encode(msg("1", "2", "t", "broadcast", payload)))
    expect(hex(undefinedPersist)).toBe(hex(bytes([3, 1, 1, 1, 1, 0, 1], "1", "2", "t", "e", "1")))
  })

  it("rejects fields over 255 UTF-8 bytes, naming the field and its length", () => {
    const broadcast = (joinRef: string, topic: string, event: string, extra: object = {}) =>
      Serializer.v2.encode(msg(joinRef, "2", topic, "broadcast", { type: "broadcast", event, payload: {}, ...extra }))
    expect(left(broadcast("1", "t".repeat(256), "e")).detail).toBe("topic length 256 exceeds maximum of 255")
    // 128 × "ö" is 128 UTF-16 units but 256 UTF-8 bytes
    expect(left(broadcast("1", "ö".repeat(128), "e")).detail).toBe("topic length 256 exceeds maximum of 255")
    expect(right(broadcast("1", "t".repeat(255), "e"))).toBeInstanceOf(Uint8Array)
    expect(left(broadcast("1", "t", "🙂".repeat(64))).detail).toBe("userEvent length 256 exceeds maximum of 255")
    expect(left(broadcast("j".repeat(300), "t", "e")).detail).toBe("joinRef length 300 exceeds maximum of 255")
    const tooLong = left(broadcast("1", "t", "e", { persist: { note: "x".repeat(300) } }))
    expect(tooLong.reason).toBe("FieldTooLong")
    expect(tooLong.detail).toMatch(/^metadata length \d+ exceeds maximum of 255$/)
  })

  it("reports unencodable user payloads and metadata as UnsupportedPayload", () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    const broadcast = (payload: object) => Serializer.v2.encode(msg("1", "2", "t", "broadcast", payload))
    expect(reason(broadcast({ type: "broadcast", event: "e", payload: cyclic }))).toBe("UnsupportedPayload")
    expect(reason(broadcast({ type: "broadcast", event: "e", payload: () => 1 }))).toBe("UnsupportedPayload")
    expect(reason(broadcast({ type: "broadcast", event: "e", payload: {}, persist: 1n }))).toBe("UnsupportedPayload")
  })

  it("is decoded by the server side, metadata keys merged into the payload", () => {
    const message = msg("1", "2", "realtime:t", "broadcast", {
      type: "broadcast",
      event: "ev",
      payload: { z: 1 },
      persist: { ttl: 5 }
    })
    expect(right(Serializer.serverV2.decode(right(Serializer.v2.encode(message))))).toEqual(message)
  })

  it("server decode: metadata cannot override type, event or payload", () => {
    const frame = bytes([3, 0, 0, 1, 1, 15, 1], "t", "e", `{"event":"bad"}`, "[1]")
    expect(right(Serializer.serverV2.decode(frame)).payload).toEqual({ type: "broadcast", event: "e", payload: [1] })
  })
})

describe("v2 kind 4 (user broadcast)", () => {
  it("decodes the observed frame with metadata", () => {
    const frame = bytes([0x04, 0x0e, 0x01, 0x0b, 0x01], "realtime:room1", "x", `{"id":"m1"}`, `{"b":2}`)
    expect(right(Serializer.v2.decode(frame))).toEqual(
      msg(null, null, "realtime:room1", "broadcast", {
        type: "broadcast",
        event: "x",
        payload: { b: 2 },
        meta: { id: "m1" }
      })
    )
  })

  it("decodes without metadata (no meta key at all)", () => {
    const decoded = right(Serializer.v2.decode(bytes([4, 1, 2, 0, 1], "t", "ev", `"s"`)))
    expect(decoded.payload).toStrictEqual({ type: "broadcast", event: "ev", payload: "s" })
    expect(Object.keys(decoded.payload as object)).toEqual(["type", "event", "payload"])
  })

  it("decodes binary user payloads as a copy of the bytes", () => {
    const frame = bytes([4, 1, 1, 0, 0], "t", "e", [9, 8, 7])
    const decoded = right(Serializer.v2.decode(frame))
    const payload = decoded.payload as { readonly payload: Uint8Array }
    expect(payload.payload).toEqual(new Uint8Array([9, 8, 7]))
    expect(payload.payload.constructor).toBe(Uint8Array)
    frame.fill(0)
    expect(payload.payload).toEqual(new Uint8Array([9, 8, 7]))
  })

  it("copies out of a Node Buffer and out of a view with an offset", () => {
    const inner = bytes([4, 1, 1, 0, 0], "t", "e", [1, 2])
    const outer = new Uint8Array(inner.length + 10)
    outer.set(inner, 5)
    const sub = outer.subarray(5, 5 + inner.length)
    expect((right(Serializer.v2.decode(sub)).payload as { payload: Uint8Array }).payload).toEqual(
      new Uint8Array([1, 2])
    )
    const buffer = Buffer.from(inner)
    const fromBuffer = (right(Serializer.v2.decode(buffer)).payload as { payload: Uint8Array }).payload
    expect(fromBuffer.constructor).toBe(Uint8Array)
    expect(Array.from(fromBuffer)).toEqual([1, 2])
  })

  it("decodes UTF-8 fields", () => {
    const decoded = right(Serializer.v2.decode(bytes([4, 19, 5, 0, 1], "realtime:wörld🙂", "évé", "{}")))
    expect(decoded.topic).toBe("realtime:wörld🙂")
    expect((decoded.payload as { event: string }).event).toBe("évé")
  })

  it("round trips through encodeUserBroadcast", () => {
    const json = right(
      Binary.encodeUserBroadcast({
        topic: "realtime:a",
        event: "e",
        payload: { a: [1] },
        meta: { id: "m", replayed: true }
      })
    )
    expect(hex(json)).toBe(hex(bytes([4, 10, 1, 26, 1], "realtime:a", "e", `{"id":"m","replayed":true}`, `{"a":[1]}`)))
    expect(right(Serializer.v2.decode(json))).toEqual(
      msg(null, null, "realtime:a", "broadcast", {
        type: "broadcast",
        event: "e",
        payload: { a: [1] },
        meta: { id: "m", replayed: true }
      })
    )
    const binary = right(Binary.encodeUserBroadcast({ topic: "t", event: "e", payload: new Uint8Array([5]) }))
    expect(hex(binary)).toBe(hex(bytes([4, 1, 1, 0, 0], "t", "e", [5])))
  })
})

describe("v2 Phoenix kinds 0, 1, 2", () => {
  it("decodes kind 0 (server push, no ref)", () => {
    expect(right(Serializer.v2.decode(bytes([0, 1, 1, 3], "5", "t", "evt", [1, 2])))).toEqual(
      msg("5", null, "t", "evt", new Uint8Array([1, 2]))
    )
    expect(right(Serializer.v2.decode(bytes([0, 0, 1, 1], "t", "e")))).toEqual(
      msg(null, null, "t", "e", new Uint8Array())
    )
  })

  it("decodes kind 1 (reply)", () => {
    expect(right(Serializer.v2.decode(bytes([1, 1, 2, 1, 2], "5", "12", "t", "ok", [7])))).toEqual(
      msg("5", "12", "t", "phx_reply", { status: "ok", response: new Uint8Array([7]) })
    )
  })

  it("decodes kind 2 (broadcast)", () => {
    expect(right(Serializer.v2.decode(bytes([2, 1, 2], "t", "ev", [1, 2, 3])))).toEqual(
      msg(null, null, "t", "ev", new Uint8Array([1, 2, 3]))
    )
  })

  it("encodes kinds 0, 1, 2 in the server layouts", () => {
    expect(
      hex(
        right(Binary.encodePhoenixPush({ joinRef: "5", topic: "t", event: "evt", payload: new Uint8Array([1, 2]) }))
      )
    )
      .toBe(hex(bytes([0, 1, 1, 3], "5", "t", "evt", [1, 2])))
    expect(
      hex(
        right(
          Binary.encodePhoenixReply({
            joinRef: "5",
            ref: "12",
            topic: "t",
            status: "ok",
            response: new Uint8Array([7])
          })
        )
      )
    ).toBe(hex(bytes([1, 1, 2, 1, 2], "5", "12", "t", "ok", [7])))
    expect(hex(right(Binary.encodePhoenixBroadcast({ topic: "t", event: "ev", payload: new Uint8Array([1, 2, 3]) }))))
      .toBe(hex(bytes([2, 1, 2], "t", "ev", [1, 2, 3])))
    expect(
      left(Binary.encodePhoenixBroadcast({ topic: "t".repeat(256), event: "e", payload: new Uint8Array() })).detail
    )
      .toBe("topic length 256 exceeds maximum of 255")
  })

  it("client encodes a Uint8Array payload as kind 0 (client layout, with ref); the server decodes it", () => {
    const message = msg("5", "6", "t", "custom", new Uint8Array([1, 2]))
    const frame = right(Serializer.v2.encode(message))
    expect(hex(frame)).toBe(hex(bytes([0, 1, 1, 1, 6], "5", "6", "t", "custom", [1, 2])))
    expect(right(Serializer.serverV2.decode(frame))).toEqual(message)
  })
})

describe("v2 binary errors", () => {
  it("UnknownBinaryKind", () => {
    expect(reason(Serializer.v2.decode(new Uint8Array([5, 0, 0, 0, 0])))).toBe("UnknownBinaryKind")
    expect(reason(Serializer.v2.decode(new Uint8Array([255])))).toBe("UnknownBinaryKind")
    // kind 3 only travels client → server, kinds 1, 2, 4 only server → client
    expect(reason(Serializer.v2.decode(bytes([3, 0, 0, 1, 1, 0, 1], "t", "e", "{}")))).toBe("UnknownBinaryKind")
    expect(reason(Serializer.serverV2.decode(bytes([4, 1, 1, 0, 1], "t", "e", "{}")))).toBe("UnknownBinaryKind")
    expect(reason(Serializer.serverV2.decode(bytes([1, 0, 0, 1, 2], "t", "ok")))).toBe("UnknownBinaryKind")
    expect(reason(Serializer.serverV2.decode(bytes([2, 1, 1], "t", "e")))).toBe("UnknownBinaryKind")
  })

  it("TruncatedFrame", () => {
    expect(reason(Serializer.v2.decode(new Uint8Array()))).toBe("TruncatedFrame")
    expect(reason(Serializer.serverV2.decode(new Uint8Array()))).toBe("TruncatedFrame")
    for (const header of [[0], [0, 1, 1], [1, 0, 0, 0], [2, 1], [4, 1, 1, 0]]) {
      expect(reason(Serializer.v2.decode(Uint8Array.from(header))), String(header)).toBe("TruncatedFrame")
    }
    expect(reason(Serializer.v2.decode(bytes([4, 14, 1, 0, 1], "realtime:r", "x")))).toBe("TruncatedFrame")
    expect(reason(Serializer.v2.decode(bytes([4, 1, 1, 5, 1], "t", "e", "{}")))).toBe("TruncatedFrame")
    expect(reason(Serializer.v2.decode(bytes([0, 1, 1, 9], "1", "t", "e")))).toBe("TruncatedFrame")
    expect(reason(Serializer.v2.decode(bytes([1, 1, 1, 1, 3], "1", "2", "t", "ok")))).toBe("TruncatedFrame")
    expect(reason(Serializer.v2.decode(bytes([2, 1, 3], "t", "e")))).toBe("TruncatedFrame")
    expect(reason(Serializer.serverV2.decode(bytes([3, 1, 1, 1, 1, 0], "1", "2", "t", "e")))).toBe("TruncatedFrame")
    expect(reason(Serializer.serverV2.decode(bytes([3, 1, 1, 1, 1, 9, 1], "1", "2", "t", "e", "{}")))).toBe(
      "TruncatedFrame"
    )
    expect(reason(Serializer.serverV2.decode(bytes([0, 1, 1, 1, 1], "1", "2", "t")))).toBe("TruncatedFrame")
  })

  it("MalformedJson in the user payload or metadata", () => {
    expect(reason(Serializer.v2.decode(bytes([4, 1, 1, 0, 1], "t", "e", "{")))).toBe("MalformedJson")
    expect(reason(Serializer.v2.decode(bytes([4, 1, 1, 0, 1], "t", "e")))).toBe("MalformedJson")
    expect(reason(Serializer.v2.decode(bytes([4, 1, 1, 2, 1], "t", "e", "{x", "{}")))).toBe("MalformedJson")
    expect(reason(Serializer.v2.decode(bytes([4, 1, 1, 0, 1], "t", "e", [0x22, 0xff, 0x22])))).toBe("MalformedJson")
    expect(reason(Serializer.serverV2.decode(bytes([3, 0, 0, 1, 1, 0, 1], "t", "e", "nope")))).toBe("MalformedJson")
    expect(reason(Serializer.serverV2.decode(bytes([3, 0, 0, 1, 1, 1, 1], "t", "e", "{", "{}")))).toBe("MalformedJson")
  })

  it("InvalidEnvelope for unknown encodings, bad UTF-8 fields and non-object kind 3 metadata", () => {
    expect(reason(Serializer.v2.decode(bytes([4, 1, 1, 0, 2], "t", "e", "{}")))).toBe("InvalidEnvelope")
    expect(reason(Serializer.serverV2.decode(bytes([3, 0, 0, 1, 1, 0, 9], "t", "e", "{}")))).toBe("InvalidEnvelope")
    expect(reason(Serializer.v2.decode(bytes([4, 1, 1, 0, 1], [0xc3], "e", "{}")))).toBe("InvalidEnvelope")
    expect(reason(Serializer.v2.decode(bytes([2, 1, 1], "t", [0x80])))).toBe("InvalidEnvelope")
    expect(reason(Serializer.serverV2.decode(bytes([3, 0, 0, 1, 1, 2, 1], "t", "e", "[]", "{}")))).toBe(
      "InvalidEnvelope"
    )
  })

  it("rejects values that are not frames", () => {
    for (const serializer of [Serializer.v1, Serializer.v2, Serializer.serverV1, Serializer.serverV2]) {
      for (const frame of [undefined, null, 42, {}, new ArrayBuffer(3)]) {
        expect(serializer.decode(frame as unknown as Frame).ok).toBe(false)
      }
    }
  })
})

// -------------------------------------------------------------------------------------
// round trips
// -------------------------------------------------------------------------------------

describe("round trips", () => {
  const textMessages: ReadonlyArray<Message> = [
    msg("6", "6", "realtime:room1", "phx_join", { config: { broadcast: { self: true } }, access_token: "jwt" }),
    msg(null, "12", "phoenix", "heartbeat", {}),
    msg("6", "13", "realtime:room1", "phx_leave", {}),
    msg("6", "11", "realtime:room1", "access_token", { access_token: null }),
    msg("6", "9", "realtime:room1", "presence", { type: "presence", event: "untrack" })
  ]

  it("client encode → server decode, both vsns", () => {
    for (const message of textMessages) {
      expect(right(Serializer.serverV1.decode(right(Serializer.v1.encode(message))))).toEqual(message)
      expect(right(Serializer.serverV2.decode(right(Serializer.v2.encode(message))))).toEqual(message)
    }
    const broadcasts = [
      msg("1", "2", "realtime:t", "broadcast", { type: "broadcast", event: "e", payload: [1, "ü"] }),
      msg("1", "2", "realtime:t", "broadcast", { type: "broadcast", event: "e", payload: new Uint8Array([0, 255]) })
    ]
    for (const message of broadcasts) {
      const frame = right(Serializer.v2.encode(message))
      expect(frame).toBeInstanceOf(Uint8Array)
      expect(right(Serializer.serverV2.decode(frame))).toEqual(message)
    }
  })

  it("server encode → client decode, both vsns", () => {
    const serverMessages = [
      msg("6", "6", "realtime:room1", "phx_reply", { status: "ok", response: { postgres_changes: [] } }),
      msg(null, null, "realtime:room1", "postgres_changes", { ids: [1], data: { type: "INSERT" } }),
      msg("6", null, "realtime:room1", "presence_state", { u: { metas: [{ phx_ref: "r" }] } }),
      msg(null, null, "realtime:room1", "broadcast", { type: "broadcast", event: "x", payload: { a: 1 } })
    ]
    for (const message of serverMessages) {
      expect(right(Serializer.v1.decode(right(Serializer.serverV1.encode(message))))).toEqual({
        ...message,
        joinRef: null
      })
      expect(right(Serializer.v2.decode(right(Serializer.serverV2.encode(message))))).toEqual(message)
    }
  })

  it("server encode of binary payloads picks kinds 0, 1, 2, 4", () => {
    const cases: ReadonlyArray<readonly [Message, number]> = [
      [msg("6", null, "t", "custom", new Uint8Array([1])), 0],
      [msg("6", "7", "t", "phx_reply", { status: "error", response: new Uint8Array([2]) }), 1],
      [msg(null, null, "t", "custom", new Uint8Array([3])), 2],
      [msg(null, null, "t", "broadcast", { type: "broadcast", event: "e", payload: new Uint8Array([4]) }), 4],
      [
        msg(null, null, "t", "broadcast", {
          type: "broadcast",
          event: "e",
          payload: new Uint8Array([5]),
          meta: { id: "m", replayed: true }
        }),
        4
      ]
    ]
    for (const [message, kind] of cases) {
      const frame = right(Serializer.serverV2.encode(message))
      expect(frame).toBeInstanceOf(Uint8Array)
      expect((frame as Uint8Array)[0]).toBe(kind)
      expect(right(Serializer.v2.decode(frame))).toEqual(message)
    }
  })

  it("serializer(vsn) picks the default serializers", () => {
    expect(Serializer.serializer("1.0.0")).toBe(Serializer.v1)
    expect(Serializer.serializer("2.0.0")).toBe(Serializer.v2)
    expect(Serializer.v1.vsn).toBe("1.0.0")
    expect(Serializer.serverV2.vsn).toBe("2.0.0")
  })
})

// -------------------------------------------------------------------------------------
// the samples the editions' wrapper tests compare on
// -------------------------------------------------------------------------------------

describe("samples for the editions' wrapper tests", () => {
  it("tell every serializer apart, a v2 serializer with other metadata keys included", () => {
    const all = [
      Serializer.v1,
      Serializer.v2,
      Serializer.serverV1,
      Serializer.serverV2,
      Serializer.makeV2({ metadataKeys: ["a"] })
    ].map((serializer) =>
      JSON.stringify(outcomesOf(serializer, coreOutcome), (_, v) => v instanceof Uint8Array ? hex(v) : v)
    )
    expect(new Set(all).size).toBe(all.length)
  })

  it("encoder arguments: the first encodes, the second fails", () => {
    const pairs = [
      [Binary.encodePhoenixPush, encoderArgs.phoenixPush],
      [Binary.encodePhoenixReply, encoderArgs.phoenixReply],
      [Binary.encodePhoenixBroadcast, encoderArgs.phoenixBroadcast],
      [Binary.encodeUserBroadcast, encoderArgs.userBroadcast]
    ] as const
    for (const [encode, [ok, bad]] of pairs) {
      expect(right((encode as (args: unknown) => Result.Result<Uint8Array, ProtocolIssue>)(ok))).toBeInstanceOf(
        Uint8Array
      )
      expect(left((encode as (args: unknown) => Result.Result<Uint8Array, ProtocolIssue>)(bad))).toBeInstanceOf(
        ProtocolIssue
      )
    }
  })
})
