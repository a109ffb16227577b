/**
 * Properties of the core's wire codecs (`src/core/protocol/`), tested once for both editions: decode
 * never throws on any string or bytes, encode → decode is the identity for text frames and every
 * binary kind, and frames match realtime-js's own serializer byte for byte. The examples are in
 * `protocol.test.ts`.
 */
import * as fc from "fast-check"
import { createRequire } from "node:module"
import { describe, expect, it } from "vitest"
import * as Binary from "../../src/core/protocol/binary.js"
import type { Frame, Message } from "../../src/core/protocol/model.js"
import * as Serializer from "../../src/core/protocol/serializer.js"
import {
  broadcastPush,
  bytesArb,
  envelopeish,
  field,
  hex,
  isResult,
  jsonPayload,
  metaArb,
  msg,
  nonBroadcastEvent,
  persistArb,
  refArb,
  right,
  userBroadcast,
  userPayload
} from "../support/protocol.js"

const isObjectWith = <K extends string>(u: unknown, key: K): u is { readonly [k in K]: unknown } =>
  typeof u === "object" && u !== null && key in u

describe("properties", () => {
  const serializers = [Serializer.v1, Serializer.v2, Serializer.serverV1, Serializer.serverV2]

  it("decode never throws on arbitrary strings", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: "binary" }), envelopeish.map((value) => JSON.stringify(value) ?? "")),
        (frame) => {
          for (const serializer of serializers) expect(isResult(serializer.decode(frame))).toBe(true)
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
        for (const serializer of serializers) expect(isResult(serializer.decode(frame))).toBe(true)
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
          expect(right(Serializer.serverV2.decode(right(Serializer.v2.encode(message))))).toEqual(message)
          expect(right(Serializer.v2.decode(right(Serializer.serverV2.encode(message))))).toEqual(message)
          expect(right(Serializer.serverV1.decode(right(Serializer.v1.encode(message))))).toEqual(message)
          expect(right(Serializer.v1.decode(right(Serializer.serverV1.encode(message))))).toEqual({
            ...message,
            joinRef: null
          })
        }
      ),
      { numRuns: 500 }
    )
  })

  it("kind 3 encode → server decode is the identity (JSON and binary user payloads, persist)", () => {
    fc.assert(
      fc.property(
        refArb,
        refArb,
        field(),
        field(),
        userPayload,
        persistArb,
        (joinRef, ref, topic, event, payload, keep) => {
          const message = broadcastPush(joinRef, ref, topic, event, payload, keep)
          const frame = right(Serializer.v2.encode(message))
          expect(frame).toBeInstanceOf(Uint8Array)
          expect(right(Serializer.serverV2.decode(frame))).toEqual(message)
        }
      ),
      { numRuns: 500 }
    )
  })

  it("kind 4 encode → client decode is the identity (JSON and binary user payloads, meta)", () => {
    fc.assert(
      fc.property(field(), field(), userPayload, metaArb, (topic, event, payload, meta) => {
        const frame = right(Binary.encodeUserBroadcast(userBroadcast(topic, event, payload, meta)))
        expect(right(Serializer.v2.decode(frame))).toEqual(
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
        expect(right(Serializer.serverV2.decode(right(Serializer.v2.encode(push))))).toEqual(push)
        // server kinds 0 / 2 → client (server pushes carry no ref)
        const serverPush = msg(joinRef, null, topic, event, payload)
        expect(right(Serializer.v2.decode(right(Serializer.serverV2.encode(serverPush))))).toEqual(serverPush)
        // server kind 1 → client
        const reply = msg(joinRef, ref, topic, "phx_reply", { status: event, response: payload })
        expect(right(Serializer.v2.decode(right(Serializer.serverV2.encode(reply))))).toEqual(reply)
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
  const theirEncode = (message: Message): string | Uint8Array => {
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
  const theirDecode = (frame: Frame): Message => {
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
    fc.assert(
      fc.property(
        asciiRef,
        asciiRef,
        ascii(),
        ascii(),
        userPayload,
        persistArb,
        (joinRef, ref, topic, event, payload, keep) => {
          const broadcast = broadcastPush(joinRef, ref, topic, event, payload, keep)
          expect(hex(right(Serializer.v2.encode(broadcast)))).toBe(hex(theirEncode(broadcast)))
          const text = msg(joinRef, ref, topic, event === "broadcast" ? "b" : event, { payload: null, x: [1] })
          expect(right(Serializer.v2.encode(text))).toBe(theirEncode(text))
        }
      ),
      { numRuns: 300 }
    )
  })

  it("decodes kind 4 and text frames to the same messages", () => {
    fc.assert(
      fc.property(ascii(), ascii(), fc.oneof(jsonPayload, bytesArb), metaArb, (topic, event, payload, meta) => {
        const kind4 = right(Binary.encodeUserBroadcast(userBroadcast(topic, event, payload, meta)))
        expect(right(Serializer.v2.decode(kind4))).toEqual(theirDecode(kind4))
        const text = right(Serializer.serverV2.encode(msg("1", null, topic, event, { payload: meta ?? null, x: 1 })))
        expect(right(Serializer.v2.decode(text))).toEqual(theirDecode(text))
      }),
      { numRuns: 300 }
    )
  })
})
