/**
 * The vsn 2.0.0 binary frame codecs (kinds 0-4), client side and server side.
 */
import * as Result from "../result.js"
import {
  asBytes,
  buildFrame,
  checkMessage,
  copy,
  decodeUtf8,
  fail,
  hasOwn,
  invalidString,
  isObject,
  parseJson,
  readField,
  readJson,
  readMeta,
  readRegion,
  stringify,
  truncated,
  unknownEncoding,
  unknownKind,
  userPayloadBody
} from "./bytes.js"
import { BinaryKind, Events, PayloadEncoding } from "./constants.js"
import { type Frame, type Message, ProtocolIssue } from "./model.js"
import { decodeV2Text, encodeV2Text } from "./text.js"

/** kind 0, server → client: `0, jr len, topic len, event len, jr, topic, event, data` (no ref). */
export const decodeServerPush = (bytes: Uint8Array): Result.Result<Message, ProtocolIssue> => {
  const length = bytes.length
  if (length < 4) return truncated(0, length, 4)
  const joinRefEnd = 4 + bytes[1]!
  const topicEnd = joinRefEnd + bytes[2]!
  const eventEnd = topicEnd + bytes[3]!
  if (eventEnd > length) return truncated(0, length, eventEnd)
  const region = readRegion(bytes, 4, eventEnd)
  const joinRef = readField(bytes, region, 4, 4, joinRefEnd)
  if (joinRef === undefined) return invalidString(0, "join_ref")
  const topic = readField(bytes, region, 4, joinRefEnd, topicEnd)
  if (topic === undefined) return invalidString(0, "topic")
  const event = readField(bytes, region, 4, topicEnd, eventEnd)
  if (event === undefined) return invalidString(0, "event")
  return Result.ok({
    joinRef: joinRef === "" ? null : joinRef,
    ref: null,
    topic,
    event,
    payload: copy(bytes, eventEnd, length)
  })
}

/**
 * The layout kinds 1 and 0 (client → server) share: `kind, jr len, ref len, topic len, name len, jr,
 * ref, topic, name, data`, where `name` is the reply status or the event.
 */
export const decodeRefHeader = (
  bytes: Uint8Array,
  kind: number,
  nameField: string
): Result.Result<
  {
    readonly joinRef: string | null
    readonly ref: string | null
    readonly topic: string
    readonly name: string
    readonly data: Uint8Array
  },
  ProtocolIssue
> => {
  const length = bytes.length
  if (length < 5) return truncated(kind, length, 5)
  const joinRefEnd = 5 + bytes[1]!
  const refEnd = joinRefEnd + bytes[2]!
  const topicEnd = refEnd + bytes[3]!
  const nameEnd = topicEnd + bytes[4]!
  if (nameEnd > length) return truncated(kind, length, nameEnd)
  const region = readRegion(bytes, 5, nameEnd)
  const joinRef = readField(bytes, region, 5, 5, joinRefEnd)
  if (joinRef === undefined) return invalidString(kind, "join_ref")
  const ref = readField(bytes, region, 5, joinRefEnd, refEnd)
  if (ref === undefined) return invalidString(kind, "ref")
  const topic = readField(bytes, region, 5, refEnd, topicEnd)
  if (topic === undefined) return invalidString(kind, "topic")
  const name = readField(bytes, region, 5, topicEnd, nameEnd)
  if (name === undefined) return invalidString(kind, nameField)
  return Result.ok({
    joinRef: joinRef === "" ? null : joinRef,
    ref: ref === "" ? null : ref,
    topic,
    name,
    data: copy(bytes, nameEnd, length)
  })
}

/** kind 1: `1, jr len, ref len, topic len, status len, jr, ref, topic, status, data`. */
export const decodeReply = (bytes: Uint8Array): Result.Result<Message, ProtocolIssue> =>
  Result.map(decodeRefHeader(bytes, 1, "status"), (h) => ({
    joinRef: h.joinRef,
    ref: h.ref,
    topic: h.topic,
    event: Events.reply,
    payload: { status: h.name, response: h.data }
  }))

/** kind 2: `2, topic len, event len, topic, event, data`. */
export const decodeBroadcast = (bytes: Uint8Array): Result.Result<Message, ProtocolIssue> => {
  const length = bytes.length
  if (length < 3) return truncated(2, length, 3)
  const topicEnd = 3 + bytes[1]!
  const eventEnd = topicEnd + bytes[2]!
  if (eventEnd > length) return truncated(2, length, eventEnd)
  const region = readRegion(bytes, 3, eventEnd)
  const topic = readField(bytes, region, 3, 3, topicEnd)
  if (topic === undefined) return invalidString(2, "topic")
  const event = readField(bytes, region, 3, topicEnd, eventEnd)
  if (event === undefined) return invalidString(2, "event")
  return Result.ok({ joinRef: null, ref: null, topic, event, payload: copy(bytes, eventEnd, length) })
}

/** The user payload of kinds 3 and 4: a copy of the bytes (encoding 0) or parsed JSON (encoding 1). */
export const readUserPayload = (bytes: Uint8Array, start: number, encoding: number): unknown =>
  encoding === PayloadEncoding.binary
    ? copy(bytes, start, bytes.length)
    : readJson(bytes, start, bytes.length, "broadcast payload")

/** The message of a kind 4 frame: a `broadcast`, with `meta` when the frame has metadata (parsed JSON, never `undefined`). */
const userBroadcast = (
  topic: string,
  event: string,
  payload: unknown,
  meta: unknown | undefined
): Result.Result<Message, ProtocolIssue> =>
  Result.ok({
    joinRef: null,
    ref: null,
    topic,
    event: Events.broadcast,
    payload: meta === undefined
      ? { type: Events.broadcast, event, payload }
      : { type: Events.broadcast, event, payload, meta }
  })

/** kind 4: `4, topic len, event len, metadata len, encoding, topic, event, metadata, payload`. */
export const decodeUserBroadcast = (bytes: Uint8Array): Result.Result<Message, ProtocolIssue> => {
  const length = bytes.length
  if (length < 5) return truncated(4, length, 5)
  const topicEnd = 5 + bytes[1]!
  const eventEnd = topicEnd + bytes[2]!
  const metaLength = bytes[3]!
  const metaEnd = eventEnd + metaLength
  const encoding = bytes[4]!
  if (metaEnd > length) return truncated(4, length, metaEnd)
  if (encoding > PayloadEncoding.json) return unknownEncoding(4, encoding)
  if (encoding === PayloadEncoding.json) {
    const decoded = decodeJsonUserBroadcast(bytes, topicEnd, eventEnd, metaEnd)
    if (decoded !== undefined) return decoded
  }
  const region = readRegion(bytes, 5, metaEnd)
  const topic = readField(bytes, region, 5, 5, topicEnd)
  if (topic === undefined) return invalidString(4, "topic")
  const event = readField(bytes, region, 5, topicEnd, eventEnd)
  if (event === undefined) return invalidString(4, "user event")
  const payload = readUserPayload(bytes, metaEnd, encoding)
  if (payload instanceof ProtocolIssue) return Result.err(payload)
  if (metaLength === 0) {
    return userBroadcast(topic, event, payload, undefined)
  }
  const meta = readMeta(bytes, region, 5, eventEnd, metaEnd)
  if (meta instanceof ProtocolIssue) return Result.err(meta)
  return userBroadcast(topic, event, payload, meta)
}

/**
 * The usual kind 4 frame, ASCII names and metadata before a JSON payload, with one UTF-8 decode of
 * all that follows the header: the names and the payload decoded on their own took two calls, a
 * third of the frame's decode, mostly the decoder's fixed cost (PERFORMANCE.md, Effect 4 table).
 * `undefined` when the names are not ASCII or the bytes are not valid UTF-8: the general path then
 * decodes the frame, and says what is wrong.
 */
const decodeJsonUserBroadcast = (
  bytes: Uint8Array,
  topicEnd: number,
  eventEnd: number,
  metaEnd: number
): Result.Result<Message, ProtocolIssue> | undefined => {
  for (let i = 5; i < metaEnd; i++) if (bytes[i]! > 0x7f) return undefined
  // ASCII up to `metaEnd`: byte offsets are string offsets there
  const text = decodeUtf8(bytes, 5, bytes.length)
  if (text === undefined) return undefined
  const topic = text.slice(0, topicEnd - 5)
  const event = text.slice(topicEnd - 5, eventEnd - 5)
  const payload = parseJson(text.slice(metaEnd - 5), "broadcast payload")
  if (payload instanceof ProtocolIssue) return Result.err(payload)
  if (metaEnd === eventEnd) {
    return userBroadcast(topic, event, payload, undefined)
  }
  const meta = parseJson(text.slice(eventEnd - 5, metaEnd - 5), "broadcast metadata")
  if (meta instanceof ProtocolIssue) return Result.err(meta)
  return userBroadcast(topic, event, payload, meta)
}

/** Decodes a binary frame a server sent (kinds 0, 1, 2 and 4). */
export const decodeV2Binary = (bytes: Uint8Array): Result.Result<Message, ProtocolIssue> => {
  if (bytes.length === 0) return fail("TruncatedFrame", "empty binary frame")
  switch (bytes[0]) {
    case BinaryKind.userBroadcast:
      return decodeUserBroadcast(bytes)
    case BinaryKind.push:
      return decodeServerPush(bytes)
    case BinaryKind.reply:
      return decodeReply(bytes)
    case BinaryKind.broadcast:
      return decodeBroadcast(bytes)
    default:
      return unknownKind(bytes[0]!, "client")
  }
}

/** Decodes a vsn 2.0.0 frame a server sent: a JSON array text frame or a binary frame. */
export const decodeV2 = (frame: Frame): Result.Result<Message, ProtocolIssue> =>
  typeof frame === "string"
    ? decodeV2Text(frame)
    : frame instanceof Uint8Array
    ? decodeV2Binary(frame)
    : fail("InvalidEnvelope", "a frame must be a string or a Uint8Array")

/** The field names of kind 3, for error messages. */
export const KIND_3_NAMES = ["joinRef", "ref", "topic", "userEvent", "metadata"] as const
/** The field names of kind 0 (client → server), for error messages. */
export const KIND_0_CLIENT_NAMES = ["joinRef", "ref", "topic", "event"] as const

/** The `keys` of a broadcast payload sent as kind 3 metadata (`undefined` when none is set). */
export const pickMetadata = (
  payload: Record<string, unknown>,
  keys: ReadonlyArray<string>
): Record<string, unknown> | undefined => {
  let picked: Record<string, unknown> | undefined
  if (keys.length === 1) {
    const key = keys[0]!
    if (hasOwn.call(payload, key) && payload[key] !== undefined) picked = { [key]: payload[key] }
    return picked
  }
  // in the payload's key order, as realtime-js
  for (const key of Object.keys(payload)) {
    if (payload[key] !== undefined && keys.includes(key)) {
      if (picked === undefined) picked = {}
      picked[key] = payload[key]
    }
  }
  return picked
}

/** kind 3, client → server. */
export const encodeUserBroadcastPush = (
  message: Message,
  payload: Record<string, unknown>,
  userEvent: string,
  metadataKeys: ReadonlyArray<string>
): Result.Result<Frame, ProtocolIssue> => {
  let metadata = ""
  if (metadataKeys.length > 0) {
    const picked = pickMetadata(payload, metadataKeys)
    if (picked !== undefined) {
      const json = stringify(picked, "broadcast metadata")
      if (typeof json !== "string") return Result.err(json)
      metadata = json
    }
  }
  const userPayload = payload.payload
  const body = userPayloadBody(userPayload)
  if (body instanceof ProtocolIssue) return Result.err(body)
  return buildFrame(
    BinaryKind.userBroadcastPush,
    KIND_3_NAMES,
    [message.joinRef ?? "", message.ref ?? "", message.topic, userEvent, metadata],
    asBytes(userPayload) === undefined ? PayloadEncoding.json : PayloadEncoding.binary,
    body
  )
}

/** The vsn 2.0.0 client encoder sending `metadataKeys` of a broadcast payload as metadata. */
export const makeEncodeV2 =
  (metadataKeys: ReadonlyArray<string>) => (message: Message): Result.Result<Frame, ProtocolIssue> => {
    const invalid = checkMessage(message)
    if (invalid !== undefined) return Result.err(invalid)
    const payload = message.payload
    if (message.event === Events.broadcast && isObject(payload) && typeof payload.event === "string") {
      return encodeUserBroadcastPush(message, payload, payload.event, metadataKeys)
    }
    const bytes = asBytes(payload)
    if (bytes !== undefined) {
      // kind 0, client → server: `0, jr len, ref len, topic len, event len, jr, ref, topic, event, data`
      return buildFrame(
        BinaryKind.push,
        KIND_0_CLIENT_NAMES,
        [message.joinRef ?? "", message.ref ?? "", message.topic, message.event],
        -1,
        bytes
      )
    }
    return encodeV2Text(message)
  }

// -------------------------------------------------------------------------------------
// server side
// -------------------------------------------------------------------------------------

/** kind 0, client → server: `0, jr len, ref len, topic len, event len, jr, ref, topic, event, data`. */
export const decodeClientPush = (bytes: Uint8Array): Result.Result<Message, ProtocolIssue> =>
  Result.map(decodeRefHeader(bytes, 0, "event"), (h) => ({
    joinRef: h.joinRef,
    ref: h.ref,
    topic: h.topic,
    event: h.name,
    payload: h.data
  }))

/**
 * kind 3: `3, jr len, ref len, topic len, event len, metadata len, encoding, jr, ref, topic, event,
 * metadata, payload`.
 */
export const decodeUserBroadcastPush = (bytes: Uint8Array): Result.Result<Message, ProtocolIssue> => {
  const length = bytes.length
  if (length < 7) return truncated(3, length, 7)
  const joinRefEnd = 7 + bytes[1]!
  const refEnd = joinRefEnd + bytes[2]!
  const topicEnd = refEnd + bytes[3]!
  const eventEnd = topicEnd + bytes[4]!
  const metaLength = bytes[5]!
  const metaEnd = eventEnd + metaLength
  const encoding = bytes[6]!
  if (metaEnd > length) return truncated(3, length, metaEnd)
  if (encoding > PayloadEncoding.json) return unknownEncoding(3, encoding)
  const region = readRegion(bytes, 7, metaEnd)
  const joinRef = readField(bytes, region, 7, 7, joinRefEnd)
  if (joinRef === undefined) return invalidString(3, "join_ref")
  const ref = readField(bytes, region, 7, joinRefEnd, refEnd)
  if (ref === undefined) return invalidString(3, "ref")
  const topic = readField(bytes, region, 7, refEnd, topicEnd)
  if (topic === undefined) return invalidString(3, "topic")
  const event = readField(bytes, region, 7, topicEnd, eventEnd)
  if (event === undefined) return invalidString(3, "user event")
  const payload = readUserPayload(bytes, metaEnd, encoding)
  if (payload instanceof ProtocolIssue) return Result.err(payload)
  let meta: unknown = undefined
  if (metaLength > 0) {
    meta = readMeta(bytes, region, 7, eventEnd, metaEnd)
    if (meta instanceof ProtocolIssue) return Result.err(meta)
    if (!isObject(meta) || Array.isArray(meta)) return fail("InvalidEnvelope", "broadcast metadata must be an object")
  }
  return Result.ok({
    joinRef: joinRef === "" ? null : joinRef,
    ref: ref === "" ? null : ref,
    topic,
    event: Events.broadcast,
    // metadata keys (e.g. `persist`) come back as payload keys, but never override type/event/payload
    payload: meta === undefined
      ? { type: Events.broadcast, event, payload }
      : { ...meta, type: Events.broadcast, event, payload }
  })
}

/** Decodes a binary frame a client sent (kinds 0 and 3). */
export const decodeServerV2Binary = (bytes: Uint8Array): Result.Result<Message, ProtocolIssue> => {
  if (bytes.length === 0) return fail("TruncatedFrame", "empty binary frame")
  switch (bytes[0]) {
    case BinaryKind.userBroadcastPush:
      return decodeUserBroadcastPush(bytes)
    case BinaryKind.push:
      return decodeClientPush(bytes)
    default:
      return unknownKind(bytes[0]!, "server")
  }
}

/** The field names of kind 0 (server → client), for error messages. */
export const KIND_0_SERVER_NAMES = ["joinRef", "topic", "event"] as const
/** The field names of kind 1, for error messages. */
export const KIND_1_NAMES = ["joinRef", "ref", "topic", "status"] as const
/** The field names of kind 2, for error messages. */
export const KIND_2_NAMES = ["topic", "event"] as const
/** The field names of kind 4, for error messages. */
export const KIND_4_NAMES = ["topic", "userEvent", "metadata"] as const

/**
 * Encodes a Phoenix push (binary kind 0, server → client layout, which has no `ref`).
 */
export const encodePhoenixPush = (args: {
  readonly joinRef: string | null
  readonly topic: string
  readonly event: string
  readonly payload: Uint8Array
}): Result.Result<Uint8Array, ProtocolIssue> =>
  buildFrame(BinaryKind.push, KIND_0_SERVER_NAMES, [args.joinRef ?? "", args.topic, args.event], -1, args.payload)

/**
 * Encodes a Phoenix reply (binary kind 1, server → client).
 */
export const encodePhoenixReply = (args: {
  readonly joinRef: string | null
  readonly ref: string | null
  readonly topic: string
  readonly status: string
  readonly response: Uint8Array
}): Result.Result<Uint8Array, ProtocolIssue> =>
  buildFrame(
    BinaryKind.reply,
    KIND_1_NAMES,
    [args.joinRef ?? "", args.ref ?? "", args.topic, args.status],
    -1,
    args.response
  )

/**
 * Encodes a Phoenix broadcast (binary kind 2, server → client).
 */
export const encodePhoenixBroadcast = (args: {
  readonly topic: string
  readonly event: string
  readonly payload: Uint8Array
}): Result.Result<Uint8Array, ProtocolIssue> =>
  buildFrame(BinaryKind.broadcast, KIND_2_NAMES, [args.topic, args.event], -1, args.payload)

/**
 * Encodes a Supabase user broadcast (binary kind 4, server → client). A `Uint8Array` (or
 * `ArrayBuffer`) payload is sent as raw bytes (encoding 0), anything else as JSON (encoding 1).
 * `meta`, when given, is sent as the metadata JSON.
 */
export const encodeUserBroadcast = (args: {
  readonly topic: string
  readonly event: string
  readonly payload: unknown
  readonly meta?: Record<string, unknown> | undefined
}): Result.Result<Uint8Array, ProtocolIssue> => {
  let metadata = ""
  if (args.meta !== undefined) {
    const json = stringify(args.meta, "broadcast metadata")
    if (typeof json !== "string") return Result.err(json)
    metadata = json
  }
  const body = userPayloadBody(args.payload)
  if (body instanceof ProtocolIssue) return Result.err(body)
  return buildFrame(
    BinaryKind.userBroadcast,
    KIND_4_NAMES,
    [args.topic, args.event, metadata],
    asBytes(args.payload) === undefined ? PayloadEncoding.json : PayloadEncoding.binary,
    body
  )
}

/**
 * Server → client vsn 2.0.0: binary payloads are framed in binary (a `Uint8Array` payload as kind 2
 * without join ref or kind 0 with one — the `ref` is dropped, server pushes have none; a reply whose
 * `response` is a `Uint8Array` as kind 1; a broadcast whose user payload is a `Uint8Array` as kind 4);
 * everything else is a text frame.
 */
export const encodeServerV2 = (message: Message): Result.Result<Frame, ProtocolIssue> => {
  const invalid = checkMessage(message)
  if (invalid !== undefined) return Result.err(invalid)
  const payload = message.payload
  const bytes = asBytes(payload)
  if (bytes !== undefined) {
    return message.joinRef === null
      ? encodePhoenixBroadcast({ topic: message.topic, event: message.event, payload: bytes })
      : encodePhoenixPush({ joinRef: message.joinRef, topic: message.topic, event: message.event, payload: bytes })
  }
  if (isObject(payload)) {
    if (message.event === Events.reply && typeof payload.status === "string") {
      const response = asBytes(payload.response)
      if (response !== undefined) {
        return encodePhoenixReply({
          joinRef: message.joinRef,
          ref: message.ref,
          topic: message.topic,
          status: payload.status,
          response
        })
      }
    } else if (
      message.event === Events.broadcast && typeof payload.event === "string" && asBytes(payload.payload) !== undefined
    ) {
      const meta = payload.meta
      return encodeUserBroadcast(
        isObject(meta)
          ? { topic: message.topic, event: payload.event, payload: payload.payload, meta }
          : { topic: message.topic, event: payload.event, payload: payload.payload }
      )
    }
  }
  return encodeV2Text(message)
}
