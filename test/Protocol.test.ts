import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as fc from "fast-check"
import { createRequire } from "node:module"
import * as Protocol from "../src/Protocol.js"
import { ProtocolError } from "../src/RealtimeError.js"

const encoder = new TextEncoder()

/** Concatenates byte arrays and UTF-8 strings into one frame. */
const bytes = (...parts: ReadonlyArray<ReadonlyArray<number> | string>): Uint8Array => {
  const chunks = parts.map((part) => typeof part === "string" ? encoder.encode(part) : Uint8Array.from(part))
  const out = new Uint8Array(chunks.reduce((n, chunk) => n + chunk.length, 0))
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}

const hex = (frame: Protocol.Frame): string =>
  typeof frame === "string" ? frame : Array.from(frame, (b) => b.toString(16).padStart(2, "0")).join(" ")

const right = <A>(either: Either.Either<A, ProtocolError>): A => {
  if (Either.isLeft(either)) throw new Error(`expected Right, got ${either.left.message}`)
  return either.right
}

const left = <A>(either: Either.Either<A, ProtocolError>): ProtocolError => {
  if (Either.isRight(either)) throw new Error(`expected Left, got ${JSON.stringify(either.right)}`)
  expect(either.left).toBeInstanceOf(ProtocolError)
  return either.left
}

const isObjectWith = <K extends string>(u: unknown, key: K): u is { readonly [k in K]: unknown } =>
  typeof u === "object" && u !== null && key in u

const reason = <A>(either: Either.Either<A, ProtocolError>): ProtocolError["reason"] => left(either).reason

const msg = (
  joinRef: string | null,
  ref: string | null,
  topic: string,
  event: string,
  payload: unknown
): Protocol.Message => ({ joinRef, ref, topic, event, payload })

// -------------------------------------------------------------------------------------
// vsn 1.0.0
// -------------------------------------------------------------------------------------

describe("v1", () => {
  it("encodes objects in realtime-js key order, join_ref omitted when null", () => {
    expect(right(Protocol.v1.encode(msg("6", "6", "realtime:room2", "phx_join", { a: 1 })))).toBe(
      `{"topic":"realtime:room2","event":"phx_join","payload":{"a":1},"ref":"6","join_ref":"6"}`
    )
    expect(right(Protocol.v1.encode(msg(null, "12", "phoenix", "heartbeat", {})))).toBe(
      `{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"12"}`
    )
  })

  it("server encode never carries join_ref", () => {
    expect(right(Protocol.serverV1.encode(msg("6", "6", "realtime:a", "phx_reply", { status: "ok", response: {} }))))
      .toBe(`{"topic":"realtime:a","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"6"}`)
  })

  it("decodes with a missing join_ref or ref as null", () => {
    expect(right(Protocol.v1.decode(`{"topic":"t","event":"e","payload":{"x":1},"ref":"3"}`))).toEqual(
      msg(null, "3", "t", "e", { x: 1 })
    )
    expect(right(Protocol.v1.decode(`{"topic":"t","event":"e","payload":null}`))).toEqual(
      msg(null, null, "t", "e", null)
    )
    expect(right(Protocol.serverV1.decode(`{"topic":"t","event":"e","payload":[],"ref":null,"join_ref":"1"}`)))
      .toEqual(msg("1", null, "t", "e", []))
  })

  it("rejects binary frames, bad JSON and bad shapes", () => {
    expect(reason(Protocol.v1.decode(new Uint8Array([4, 0, 0, 0, 1])))).toBe("InvalidEnvelope")
    expect(reason(Protocol.serverV1.decode(new Uint8Array([3])))).toBe("InvalidEnvelope")
    expect(reason(Protocol.v1.decode(`{"topic":`))).toBe("MalformedJson")
    expect(reason(Protocol.v1.decode(`[null,null,"t","e",{}]`))).toBe("InvalidEnvelope")
    expect(reason(Protocol.v1.decode(`null`))).toBe("InvalidEnvelope")
    expect(reason(Protocol.v1.decode(`{"topic":1,"event":"e","payload":{}}`))).toBe("InvalidEnvelope")
    expect(reason(Protocol.v1.decode(`{"topic":"t","event":"e"}`))).toBe("InvalidEnvelope")
    expect(reason(Protocol.v1.decode(`{"topic":"t","event":"e","payload":{},"ref":7}`))).toBe("InvalidEnvelope")
    expect(reason(Protocol.v1.decode(`{"topic":"t","event":"e","payload":{},"join_ref":false}`))).toBe(
      "InvalidEnvelope"
    )
  })

  it("refuses binary payloads and unencodable payloads", () => {
    expect(reason(Protocol.v1.encode(msg(null, "1", "t", "e", new Uint8Array([1]))))).toBe("UnsupportedPayload")
    expect(
      reason(
        Protocol.v1.encode(
          msg("1", "2", "t", "broadcast", { type: "broadcast", event: "x", payload: new ArrayBuffer(2) })
        )
      )
    ).toBe("UnsupportedPayload")
    expect(reason(Protocol.v1.encode(msg(null, "1", "t", "e", { n: 1n })))).toBe("UnsupportedPayload")
    expect(reason(Protocol.serverV1.encode(msg(null, "1", "t", "e", new Uint8Array([1]))))).toBe("UnsupportedPayload")
  })

  it("sends broadcasts as text", () => {
    const message = msg("1", "2", "realtime:t", "broadcast", { type: "broadcast", event: "x", payload: { a: 1 } })
    const frame = right(Protocol.v1.encode(message))
    expect(typeof frame).toBe("string")
    expect(right(Protocol.serverV1.decode(frame))).toEqual(message)
  })
})

// -------------------------------------------------------------------------------------
// vsn 2.0.0 text
// -------------------------------------------------------------------------------------

describe("v2 text", () => {
  it("encodes JSON arrays (observed heartbeat and join)", () => {
    expect(right(Protocol.v2.encode(msg(null, "12", Protocol.PHOENIX_TOPIC, Protocol.Events.heartbeat, {})))).toBe(
      `[null,"12","phoenix","heartbeat",{}]`
    )
    expect(
      right(Protocol.v2.encode(msg("6", "9", "realtime:room1", "presence", {
        type: "presence",
        event: "track",
        payload: { online: true }
      })))
    ).toBe(`["6","9","realtime:room1","presence",{"type":"presence","event":"track","payload":{"online":true}}]`)
  })

  it("decodes JSON arrays", () => {
    expect(right(Protocol.v2.decode(`["6","6","realtime:room1","phx_reply",{"status":"ok","response":{}}]`))).toEqual(
      msg("6", "6", "realtime:room1", "phx_reply", { status: "ok", response: {} })
    )
    expect(right(Protocol.v2.decode(`[null,null,"t","e",null]`))).toEqual(msg(null, null, "t", "e", null))
  })

  it("ignores elements after the fifth, as Phoenix's V2 serializer does", () => {
    const decoded = Protocol.v2.decode(`["1","2","t","e",{"a":1},"extra",3]`)
    expect(Either.getOrThrow(decoded)).toEqual({ joinRef: "1", ref: "2", topic: "t", event: "e", payload: { a: 1 } })
  })

  it("reports bad JSON as MalformedJson and bad shapes as InvalidEnvelope", () => {
    expect(reason(Protocol.v2.decode(``))).toBe("MalformedJson")
    expect(reason(Protocol.v2.decode(`[null,null,"t","e",`))).toBe("MalformedJson")
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
      expect(reason(Protocol.v2.decode(frame)), frame).toBe("InvalidEnvelope")
      expect(reason(Protocol.serverV2.decode(frame)), frame).toBe("InvalidEnvelope")
    }
  })

  it("reports payloads JSON cannot encode as UnsupportedPayload", () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(reason(Protocol.v2.encode(msg(null, "1", "t", "e", cyclic)))).toBe("UnsupportedPayload")
    expect(reason(Protocol.v2.encode(msg(null, "1", "t", "e", { n: 1n })))).toBe("UnsupportedPayload")
    expect(reason(Protocol.serverV2.encode(msg(null, "1", "t", "e", { n: 1n })))).toBe("UnsupportedPayload")
  })

  it("rejects messages whose envelope fields have the wrong type", () => {
    const bad = { joinRef: 1, ref: null, topic: "t", event: "e", payload: {} } as unknown as Protocol.Message
    expect(reason(Protocol.v2.encode(bad))).toBe("InvalidEnvelope")
    expect(reason(Protocol.v1.encode(bad))).toBe("InvalidEnvelope")
    expect(reason(Protocol.serverV2.encode(bad))).toBe("InvalidEnvelope")
  })
})

// -------------------------------------------------------------------------------------
// vsn 2.0.0 binary
// -------------------------------------------------------------------------------------

describe("v2 kind 3 (user broadcast push)", () => {
  it("matches realtime-js byte for byte: JSON payload, no metadata", () => {
    const frame = right(
      Protocol.v2.encode(msg("6", "7", "realtime:room1", "broadcast", {
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
      Protocol.v2.encode(msg("6", "8", "realtime:room1", "broadcast", { type: "broadcast", event: "bin", payload }))
    expect(hex(right(make(new Uint8Array([1, 2, 3]))))).toBe(expected)
    expect(hex(right(make(new Uint8Array([1, 2, 3]).buffer)))).toBe(expected)
  })

  it("matches realtime-js byte for byte: persist metadata", () => {
    const frame = right(
      Protocol.v2.encode(msg("1", "2", "realtime:t", "broadcast", {
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
    const frame = right(Protocol.v2.encode(msg(null, null, "t", "broadcast", { type: "broadcast", event: "e" })))
    expect(hex(frame)).toBe(hex(bytes([3, 0, 0, 1, 1, 0, 1], "t", "e", "{}")))
  })

  it("only carries allow-listed metadata keys, in payload order", () => {
    const payload = { type: "broadcast", event: "e", b: 2, payload: 1, a: 1, other: true, persist: undefined }
    const none = right(
      Protocol.makeV2({ metadataKeys: [] }).encode(msg("1", "2", "t", "broadcast", { ...payload, persist: true }))
    )
    expect(hex(none)).toBe(hex(bytes([3, 1, 1, 1, 1, 0, 1], "1", "2", "t", "e", "1")))
    const two = right(Protocol.makeV2({ metadataKeys: ["a", "b"] }).encode(msg("1", "2", "t", "broadcast", payload)))
    expect(hex(two)).toBe(hex(bytes([3, 1, 1, 1, 1, 13, 1], "1", "2", "t", "e", `{"b":2,"a":1}`, "1")))
    const undefinedPersist = right(Protocol.v2.encode(msg("1", "2", "t", "broadcast", payload)))
    expect(hex(undefinedPersist)).toBe(hex(bytes([3, 1, 1, 1, 1, 0, 1], "1", "2", "t", "e", "1")))
  })

  it("rejects fields over 255 UTF-8 bytes, naming the field and its length", () => {
    const broadcast = (joinRef: string, topic: string, event: string, extra: object = {}) =>
      Protocol.v2.encode(msg(joinRef, "2", topic, "broadcast", { type: "broadcast", event, payload: {}, ...extra }))
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
    const broadcast = (payload: object) => Protocol.v2.encode(msg("1", "2", "t", "broadcast", payload))
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
    expect(right(Protocol.serverV2.decode(right(Protocol.v2.encode(message))))).toEqual(message)
  })

  it("server decode: metadata cannot override type, event or payload", () => {
    const frame = bytes([3, 0, 0, 1, 1, 15, 1], "t", "e", `{"event":"bad"}`, "[1]")
    expect(right(Protocol.serverV2.decode(frame)).payload).toEqual({ type: "broadcast", event: "e", payload: [1] })
  })
})

describe("v2 kind 4 (user broadcast)", () => {
  it("decodes the observed frame with metadata", () => {
    const frame = bytes([0x04, 0x0e, 0x01, 0x0b, 0x01], "realtime:room1", "x", `{"id":"m1"}`, `{"b":2}`)
    expect(right(Protocol.v2.decode(frame))).toEqual(
      msg(null, null, "realtime:room1", "broadcast", {
        type: "broadcast",
        event: "x",
        payload: { b: 2 },
        meta: { id: "m1" }
      })
    )
  })

  it("decodes without metadata (no meta key at all)", () => {
    const decoded = right(Protocol.v2.decode(bytes([4, 1, 2, 0, 1], "t", "ev", `"s"`)))
    expect(decoded.payload).toStrictEqual({ type: "broadcast", event: "ev", payload: "s" })
    expect(Object.keys(decoded.payload as object)).toEqual(["type", "event", "payload"])
  })

  it("decodes binary user payloads as a copy of the bytes", () => {
    const frame = bytes([4, 1, 1, 0, 0], "t", "e", [9, 8, 7])
    const decoded = right(Protocol.v2.decode(frame))
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
    expect((right(Protocol.v2.decode(sub)).payload as { payload: Uint8Array }).payload).toEqual(new Uint8Array([1, 2]))
    const buffer = Buffer.from(inner)
    const fromBuffer = (right(Protocol.v2.decode(buffer)).payload as { payload: Uint8Array }).payload
    expect(fromBuffer.constructor).toBe(Uint8Array)
    expect(Array.from(fromBuffer)).toEqual([1, 2])
  })

  it("decodes UTF-8 fields", () => {
    const decoded = right(Protocol.v2.decode(bytes([4, 19, 5, 0, 1], "realtime:wörld🙂", "évé", "{}")))
    expect(decoded.topic).toBe("realtime:wörld🙂")
    expect((decoded.payload as { event: string }).event).toBe("évé")
  })

  it("round trips through encodeUserBroadcast", () => {
    const json = right(
      Protocol.encodeUserBroadcast({
        topic: "realtime:a",
        event: "e",
        payload: { a: [1] },
        meta: { id: "m", replayed: true }
      })
    )
    expect(hex(json)).toBe(hex(bytes([4, 10, 1, 26, 1], "realtime:a", "e", `{"id":"m","replayed":true}`, `{"a":[1]}`)))
    expect(right(Protocol.v2.decode(json))).toEqual(
      msg(null, null, "realtime:a", "broadcast", {
        type: "broadcast",
        event: "e",
        payload: { a: [1] },
        meta: { id: "m", replayed: true }
      })
    )
    const binary = right(Protocol.encodeUserBroadcast({ topic: "t", event: "e", payload: new Uint8Array([5]) }))
    expect(hex(binary)).toBe(hex(bytes([4, 1, 1, 0, 0], "t", "e", [5])))
  })
})

describe("v2 Phoenix kinds 0, 1, 2", () => {
  it("decodes kind 0 (server push, no ref)", () => {
    expect(right(Protocol.v2.decode(bytes([0, 1, 1, 3], "5", "t", "evt", [1, 2])))).toEqual(
      msg("5", null, "t", "evt", new Uint8Array([1, 2]))
    )
    expect(right(Protocol.v2.decode(bytes([0, 0, 1, 1], "t", "e")))).toEqual(
      msg(null, null, "t", "e", new Uint8Array())
    )
  })

  it("decodes kind 1 (reply)", () => {
    expect(right(Protocol.v2.decode(bytes([1, 1, 2, 1, 2], "5", "12", "t", "ok", [7])))).toEqual(
      msg("5", "12", "t", "phx_reply", { status: "ok", response: new Uint8Array([7]) })
    )
  })

  it("decodes kind 2 (broadcast)", () => {
    expect(right(Protocol.v2.decode(bytes([2, 1, 2], "t", "ev", [1, 2, 3])))).toEqual(
      msg(null, null, "t", "ev", new Uint8Array([1, 2, 3]))
    )
  })

  it("encodes kinds 0, 1, 2 in the server layouts", () => {
    expect(
      hex(
        right(Protocol.encodePhoenixPush({ joinRef: "5", topic: "t", event: "evt", payload: new Uint8Array([1, 2]) }))
      )
    )
      .toBe(hex(bytes([0, 1, 1, 3], "5", "t", "evt", [1, 2])))
    expect(
      hex(
        right(
          Protocol.encodePhoenixReply({
            joinRef: "5",
            ref: "12",
            topic: "t",
            status: "ok",
            response: new Uint8Array([7])
          })
        )
      )
    ).toBe(hex(bytes([1, 1, 2, 1, 2], "5", "12", "t", "ok", [7])))
    expect(hex(right(Protocol.encodePhoenixBroadcast({ topic: "t", event: "ev", payload: new Uint8Array([1, 2, 3]) }))))
      .toBe(hex(bytes([2, 1, 2], "t", "ev", [1, 2, 3])))
    expect(
      left(Protocol.encodePhoenixBroadcast({ topic: "t".repeat(256), event: "e", payload: new Uint8Array() })).detail
    )
      .toBe("topic length 256 exceeds maximum of 255")
  })

  it("client encodes a Uint8Array payload as kind 0 (client layout, with ref); the server decodes it", () => {
    const message = msg("5", "6", "t", "custom", new Uint8Array([1, 2]))
    const frame = right(Protocol.v2.encode(message))
    expect(hex(frame)).toBe(hex(bytes([0, 1, 1, 1, 6], "5", "6", "t", "custom", [1, 2])))
    expect(right(Protocol.serverV2.decode(frame))).toEqual(message)
  })
})

describe("v2 binary errors", () => {
  it("UnknownBinaryKind", () => {
    expect(reason(Protocol.v2.decode(new Uint8Array([5, 0, 0, 0, 0])))).toBe("UnknownBinaryKind")
    expect(reason(Protocol.v2.decode(new Uint8Array([255])))).toBe("UnknownBinaryKind")
    // kind 3 only travels client → server, kinds 1, 2, 4 only server → client
    expect(reason(Protocol.v2.decode(bytes([3, 0, 0, 1, 1, 0, 1], "t", "e", "{}")))).toBe("UnknownBinaryKind")
    expect(reason(Protocol.serverV2.decode(bytes([4, 1, 1, 0, 1], "t", "e", "{}")))).toBe("UnknownBinaryKind")
    expect(reason(Protocol.serverV2.decode(bytes([1, 0, 0, 1, 2], "t", "ok")))).toBe("UnknownBinaryKind")
    expect(reason(Protocol.serverV2.decode(bytes([2, 1, 1], "t", "e")))).toBe("UnknownBinaryKind")
  })

  it("TruncatedFrame", () => {
    expect(reason(Protocol.v2.decode(new Uint8Array()))).toBe("TruncatedFrame")
    expect(reason(Protocol.serverV2.decode(new Uint8Array()))).toBe("TruncatedFrame")
    for (const header of [[0], [0, 1, 1], [1, 0, 0, 0], [2, 1], [4, 1, 1, 0]]) {
      expect(reason(Protocol.v2.decode(Uint8Array.from(header))), String(header)).toBe("TruncatedFrame")
    }
    expect(reason(Protocol.v2.decode(bytes([4, 14, 1, 0, 1], "realtime:r", "x")))).toBe("TruncatedFrame")
    expect(reason(Protocol.v2.decode(bytes([4, 1, 1, 5, 1], "t", "e", "{}")))).toBe("TruncatedFrame")
    expect(reason(Protocol.v2.decode(bytes([0, 1, 1, 9], "1", "t", "e")))).toBe("TruncatedFrame")
    expect(reason(Protocol.v2.decode(bytes([1, 1, 1, 1, 3], "1", "2", "t", "ok")))).toBe("TruncatedFrame")
    expect(reason(Protocol.v2.decode(bytes([2, 1, 3], "t", "e")))).toBe("TruncatedFrame")
    expect(reason(Protocol.serverV2.decode(bytes([3, 1, 1, 1, 1, 0], "1", "2", "t", "e")))).toBe("TruncatedFrame")
    expect(reason(Protocol.serverV2.decode(bytes([3, 1, 1, 1, 1, 9, 1], "1", "2", "t", "e", "{}")))).toBe(
      "TruncatedFrame"
    )
    expect(reason(Protocol.serverV2.decode(bytes([0, 1, 1, 1, 1], "1", "2", "t")))).toBe("TruncatedFrame")
  })

  it("MalformedJson in the user payload or metadata", () => {
    expect(reason(Protocol.v2.decode(bytes([4, 1, 1, 0, 1], "t", "e", "{")))).toBe("MalformedJson")
    expect(reason(Protocol.v2.decode(bytes([4, 1, 1, 0, 1], "t", "e")))).toBe("MalformedJson")
    expect(reason(Protocol.v2.decode(bytes([4, 1, 1, 2, 1], "t", "e", "{x", "{}")))).toBe("MalformedJson")
    expect(reason(Protocol.v2.decode(bytes([4, 1, 1, 0, 1], "t", "e", [0x22, 0xff, 0x22])))).toBe("MalformedJson")
    expect(reason(Protocol.serverV2.decode(bytes([3, 0, 0, 1, 1, 0, 1], "t", "e", "nope")))).toBe("MalformedJson")
    expect(reason(Protocol.serverV2.decode(bytes([3, 0, 0, 1, 1, 1, 1], "t", "e", "{", "{}")))).toBe("MalformedJson")
  })

  it("InvalidEnvelope for unknown encodings, bad UTF-8 fields and non-object kind 3 metadata", () => {
    expect(reason(Protocol.v2.decode(bytes([4, 1, 1, 0, 2], "t", "e", "{}")))).toBe("InvalidEnvelope")
    expect(reason(Protocol.serverV2.decode(bytes([3, 0, 0, 1, 1, 0, 9], "t", "e", "{}")))).toBe("InvalidEnvelope")
    expect(reason(Protocol.v2.decode(bytes([4, 1, 1, 0, 1], [0xc3], "e", "{}")))).toBe("InvalidEnvelope")
    expect(reason(Protocol.v2.decode(bytes([2, 1, 1], "t", [0x80])))).toBe("InvalidEnvelope")
    expect(reason(Protocol.serverV2.decode(bytes([3, 0, 0, 1, 1, 2, 1], "t", "e", "[]", "{}")))).toBe("InvalidEnvelope")
  })

  it("rejects values that are not frames", () => {
    for (const serializer of [Protocol.v1, Protocol.v2, Protocol.serverV1, Protocol.serverV2]) {
      for (const frame of [undefined, null, 42, {}, new ArrayBuffer(3)]) {
        expect(Either.isLeft(serializer.decode(frame as unknown as Protocol.Frame))).toBe(true)
      }
    }
  })
})

// -------------------------------------------------------------------------------------
// round trips
// -------------------------------------------------------------------------------------

describe("round trips", () => {
  const textMessages: ReadonlyArray<Protocol.Message> = [
    msg("6", "6", "realtime:room1", "phx_join", { config: { broadcast: { self: true } }, access_token: "jwt" }),
    msg(null, "12", "phoenix", "heartbeat", {}),
    msg("6", "13", "realtime:room1", "phx_leave", {}),
    msg("6", "11", "realtime:room1", "access_token", { access_token: null }),
    msg("6", "9", "realtime:room1", "presence", { type: "presence", event: "untrack" })
  ]

  it("client encode → server decode, both vsns", () => {
    for (const message of textMessages) {
      expect(right(Protocol.serverV1.decode(right(Protocol.v1.encode(message))))).toEqual(message)
      expect(right(Protocol.serverV2.decode(right(Protocol.v2.encode(message))))).toEqual(message)
    }
    const broadcasts = [
      msg("1", "2", "realtime:t", "broadcast", { type: "broadcast", event: "e", payload: [1, "ü"] }),
      msg("1", "2", "realtime:t", "broadcast", { type: "broadcast", event: "e", payload: new Uint8Array([0, 255]) })
    ]
    for (const message of broadcasts) {
      const frame = right(Protocol.v2.encode(message))
      expect(frame).toBeInstanceOf(Uint8Array)
      expect(right(Protocol.serverV2.decode(frame))).toEqual(message)
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
      expect(right(Protocol.v1.decode(right(Protocol.serverV1.encode(message))))).toEqual({ ...message, joinRef: null })
      expect(right(Protocol.v2.decode(right(Protocol.serverV2.encode(message))))).toEqual(message)
    }
  })

  it("server encode of binary payloads picks kinds 0, 1, 2, 4", () => {
    const cases: ReadonlyArray<readonly [Protocol.Message, number]> = [
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
      const frame = right(Protocol.serverV2.encode(message))
      expect(frame).toBeInstanceOf(Uint8Array)
      expect((frame as Uint8Array)[0]).toBe(kind)
      expect(right(Protocol.v2.decode(frame))).toEqual(message)
    }
  })

  it("serializer(vsn) picks the default serializers", () => {
    expect(Protocol.serializer("1.0.0")).toBe(Protocol.v1)
    expect(Protocol.serializer("2.0.0")).toBe(Protocol.v2)
    expect(Protocol.v1.vsn).toBe("1.0.0")
    expect(Protocol.serverV2.vsn).toBe("2.0.0")
  })
})

// -------------------------------------------------------------------------------------
// schemas
// -------------------------------------------------------------------------------------

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
// properties
// -------------------------------------------------------------------------------------

const utf8Length = (s: string): number => encoder.encode(s).length

/** A string that fits a binary length byte and survives UTF-8 (no lone surrogates). */
const field = (minLength = 0) =>
  fc.string({ unit: "grapheme", minLength, maxLength: 30 }).filter((s) => utf8Length(s) <= 255)

const refArb = fc.option(field(1), { nil: null })

const nonBroadcastEvent = fc.oneof(
  fc.constantFrom(...Object.values(Protocol.Events).filter((e) => e !== "broadcast")),
  field()
).filter((e) => e !== "broadcast")

/** JSON values, normalised through JSON (`-0` becomes `0`). */
const jsonPayload = fc.jsonValue().map((value) => JSON.parse(JSON.stringify(value)) as unknown)

const bytesArb = fc.uint8Array({ maxLength: 64 })

/** Arrays and values shaped like, or almost like, an envelope. */
const envelopeish = (() => {
  const slot = fc.oneof(fc.constant(null), fc.string(), fc.integer(), fc.boolean(), fc.jsonValue({ maxDepth: 1 }))
  const stringy = fc.oneof({ weight: 4, arbitrary: fc.string() }, { weight: 1, arbitrary: slot })
  const nullableString = fc.oneof(fc.constant(null), stringy)
  return fc.oneof(
    fc.tuple(nullableString, nullableString, stringy, stringy, fc.jsonValue()),
    fc.array(slot, { maxLength: 7 }),
    fc.jsonValue(),
    fc.record(
      { topic: stringy, event: stringy, payload: fc.jsonValue(), ref: nullableString, join_ref: nullableString },
      { requiredKeys: [] }
    )
  )
})()

const sameOutcome = (
  handwritten: Either.Either<Protocol.Message, ProtocolError>,
  schema: Either.Either<Protocol.Message, unknown>
) => {
  expect(Either.isRight(handwritten)).toBe(Either.isRight(schema))
  if (Either.isRight(handwritten) && Either.isRight(schema)) expect(handwritten.right).toEqual(schema.right)
}

describe("properties", () => {
  const serializers = [Protocol.v1, Protocol.v2, Protocol.serverV1, Protocol.serverV2]

  it("decode never throws on arbitrary strings", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: "binary" }), envelopeish.map((value) => JSON.stringify(value) ?? "")),
        (frame) => {
          for (const serializer of serializers) expect(Either.isEither(serializer.decode(frame))).toBe(true)
        }
      ),
      { numRuns: 500 }
    )
  })

  it("decode never throws on arbitrary bytes, including bytes that start with a known kind", () => {
    const small = fc.uint8Array({ maxLength: 40 })
    const kinded = fc.tuple(
      fc.integer({ min: 0, max: 4 }),
      fc.array(fc.integer({ min: 0, max: 12 }), { maxLength: 6 }),
      small
    )
      .map(([kind, header, rest]) => Uint8Array.from([kind, ...header, ...rest]))
    fc.assert(
      fc.property(fc.oneof(small, kinded), (frame) => {
        for (const serializer of serializers) {
          const result = serializer.decode(frame)
          expect(Either.isEither(result)).toBe(true)
          if (Either.isLeft(result)) expect(result.left).toBeInstanceOf(ProtocolError)
        }
      }),
      { numRuns: 1000 }
    )
  })

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

  it("text encode → decode is the identity (both directions, both vsns)", () => {
    fc.assert(
      fc.property(
        refArb,
        refArb,
        fc.string({ unit: "binary" }),
        nonBroadcastEvent,
        jsonPayload,
        (joinRef, ref, topic, event, payload) => {
          const message = msg(joinRef, ref, topic, event, payload)
          expect(right(Protocol.serverV2.decode(right(Protocol.v2.encode(message))))).toEqual(message)
          expect(right(Protocol.v2.decode(right(Protocol.serverV2.encode(message))))).toEqual(message)
          expect(right(Protocol.serverV1.decode(right(Protocol.v1.encode(message))))).toEqual(message)
          expect(right(Protocol.v1.decode(right(Protocol.serverV1.encode(message))))).toEqual({
            ...message,
            joinRef: null
          })
        }
      ),
      { numRuns: 500 }
    )
  })

  it("kind 3 encode → server decode is the identity (JSON and binary user payloads, persist)", () => {
    const userPayload = fc.oneof(jsonPayload.filter((v) => v !== null), bytesArb)
    const persist = fc.option(fc.oneof(fc.boolean(), fc.record({ ttl: fc.nat() })), { nil: undefined })
    fc.assert(
      fc.property(
        refArb,
        refArb,
        field(),
        field(),
        userPayload,
        persist,
        (joinRef, ref, topic, event, payload, keep) => {
          const message = msg(
            joinRef,
            ref,
            topic,
            "broadcast",
            keep === undefined
              ? { type: "broadcast", event, payload }
              : { type: "broadcast", event, payload, persist: keep }
          )
          const frame = right(Protocol.v2.encode(message))
          expect(frame).toBeInstanceOf(Uint8Array)
          expect(right(Protocol.serverV2.decode(frame))).toEqual(message)
        }
      ),
      { numRuns: 500 }
    )
  })

  it("kind 4 encode → client decode is the identity (JSON and binary user payloads, meta)", () => {
    const userPayload = fc.oneof(jsonPayload.filter((v) => v !== null), bytesArb)
    const meta = fc.option(fc.record({ id: fc.uuid(), replayed: fc.boolean() }, { requiredKeys: ["id"] }), {
      nil: undefined
    })
    fc.assert(
      fc.property(field(), field(), userPayload, meta, (topic, event, payload, meta) => {
        const frame = right(
          Protocol.encodeUserBroadcast(meta === undefined ? { topic, event, payload } : { topic, event, payload, meta })
        )
        expect(right(Protocol.v2.decode(frame))).toEqual(
          msg(
            null,
            null,
            topic,
            "broadcast",
            meta === undefined ? { type: "broadcast", event, payload } : { type: "broadcast", event, payload, meta }
          )
        )
      }),
      { numRuns: 500 }
    )
  })

  it("binary kinds 0, 1, 2 encode → decode is the identity", () => {
    fc.assert(
      fc.property(refArb, refArb, field(), field(), bytesArb, (joinRef, ref, topic, event, payload) => {
        // client kind 0 → server
        const push = msg(joinRef, ref, topic, event === "broadcast" ? "b" : event, payload)
        expect(right(Protocol.serverV2.decode(right(Protocol.v2.encode(push))))).toEqual(push)
        // server kinds 0 / 2 → client (server pushes carry no ref)
        const serverPush = msg(joinRef, null, topic, event, payload)
        expect(right(Protocol.v2.decode(right(Protocol.serverV2.encode(serverPush))))).toEqual(serverPush)
        // server kind 1 → client
        const reply = msg(joinRef, ref, topic, "phx_reply", { status: event, response: payload })
        expect(right(Protocol.v2.decode(right(Protocol.serverV2.encode(reply))))).toEqual(reply)
      }),
      { numRuns: 500 }
    )
  })
})

// -------------------------------------------------------------------------------------
// interop with realtime-js's own serializer (2.109, dev dependency)
// -------------------------------------------------------------------------------------

describe("interop with @supabase/realtime-js Serializer", () => {
  // realtime-js measures fields in UTF-16 units and writes them with `charCodeAt`: it only agrees on ASCII
  const ascii = (minLength = 0) => fc.string({ unit: "grapheme-ascii", minLength, maxLength: 40 })
  const asciiRef = fc.option(fc.stringMatching(/^[0-9]{1,6}$/), { nil: null })
  const toArrayBuffer = (u: Uint8Array): ArrayBuffer => u.slice().buffer as ArrayBuffer

  interface RealtimeJsSerializer {
    encode(message: object, callback: (frame: ArrayBuffer | string) => unknown): unknown
    decode(frame: ArrayBuffer | string, callback: (message: never) => unknown): unknown
  }
  const RealtimeJsSerializer: new(allowedMetadataKeys?: Array<string>) => RealtimeJsSerializer = createRequire(
    import.meta.url
  )("@supabase/realtime-js/dist/main/lib/serializer.js").default
  const theirs = new RealtimeJsSerializer(["persist"])
  const theirEncode = (message: Protocol.Message): string | Uint8Array => {
    const payload = message.payload as Record<string, unknown>
    const inner = payload.payload
    const out = theirs.encode(
      {
        join_ref: message.joinRef,
        ref: message.ref,
        topic: message.topic,
        event: message.event,
        payload: inner instanceof Uint8Array ? { ...payload, payload: toArrayBuffer(inner) } : payload
      },
      (frame: ArrayBuffer | string) => frame
    ) as ArrayBuffer | string
    return typeof out === "string" ? out : new Uint8Array(out)
  }
  const theirDecode = (frame: Protocol.Frame): Protocol.Message => {
    const decoded = theirs.decode(
      typeof frame === "string" ? frame : toArrayBuffer(frame),
      (m: { join_ref: string | null; ref: string | null; topic: string; event: string; payload: unknown }) => m
    ) as { join_ref: string | null; ref: string | null; topic: string; event: string; payload: unknown }
    const payload = decoded.payload as Record<string, unknown>
    return {
      joinRef: decoded.join_ref,
      ref: decoded.ref,
      topic: decoded.topic,
      event: decoded.event,
      payload: isObjectWith(payload, "payload") && payload.payload instanceof ArrayBuffer
        ? { ...payload, payload: new Uint8Array(payload.payload) }
        : payload
    }
  }

  it("encodes broadcasts and text pushes to the same frames", () => {
    const userPayload = fc.oneof(jsonPayload.filter((v) => v !== null), bytesArb)
    const persist = fc.option(fc.oneof(fc.boolean(), fc.record({ ttl: fc.nat() })), { nil: undefined })
    fc.assert(
      fc.property(
        asciiRef,
        asciiRef,
        ascii(),
        ascii(),
        userPayload,
        persist,
        (joinRef, ref, topic, event, payload, keep) => {
          const broadcast = msg(
            joinRef,
            ref,
            topic,
            "broadcast",
            keep === undefined
              ? { type: "broadcast", event, payload }
              : { type: "broadcast", event, payload, persist: keep }
          )
          expect(hex(right(Protocol.v2.encode(broadcast)))).toBe(hex(theirEncode(broadcast)))
          const text = msg(joinRef, ref, topic, event === "broadcast" ? "b" : event, { payload: null, x: [1] })
          expect(right(Protocol.v2.encode(text))).toBe(theirEncode(text))
        }
      ),
      { numRuns: 300 }
    )
  })

  it("decodes kind 4 and text frames to the same messages", () => {
    const userPayload = fc.oneof(jsonPayload, bytesArb)
    const meta = fc.option(fc.record({ id: fc.uuid(), replayed: fc.boolean() }, { requiredKeys: ["id"] }), {
      nil: undefined
    })
    fc.assert(
      fc.property(ascii(), ascii(), userPayload, meta, (topic, event, payload, meta) => {
        const kind4 = right(
          Protocol.encodeUserBroadcast(meta === undefined ? { topic, event, payload } : { topic, event, payload, meta })
        )
        expect(right(Protocol.v2.decode(kind4))).toEqual(theirDecode(kind4))
        const text = right(Protocol.serverV2.encode(msg("1", null, topic, event, { payload: meta ?? null, x: 1 })))
        expect(right(Protocol.v2.decode(text))).toEqual(theirDecode(text))
      }),
      { numRuns: 300 }
    )
  })
})
