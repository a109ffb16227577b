/**
 * The text frame codecs: vsn 1.0.0 JSON objects and vsn 2.0.0 JSON arrays, both sides.
 */
import * as Result from "../result.js"
import { asBytes, checkMessage, describeCause, fail, isObject, stringify } from "./bytes.js"
import type { Frame, Message, ProtocolIssue } from "./model.js"

/** Decodes a vsn 2.0.0 text frame: `[join_ref, ref, topic, event, payload]`. */
export const decodeV2Text = (frame: string): Result.Result<Message, ProtocolIssue> => {
  let json: unknown
  try {
    json = JSON.parse(frame)
  } catch (cause) {
    return fail("MalformedJson", describeCause(cause))
  }
  if (!Array.isArray(json) || json.length < 5) {
    return fail("InvalidEnvelope", "expected a JSON array [join_ref, ref, topic, event, payload]")
  }
  const joinRef = json[0]
  const ref = json[1]
  const topic = json[2]
  const event = json[3]
  if (joinRef !== null && typeof joinRef !== "string") {
    return fail("InvalidEnvelope", "join_ref must be a string or null")
  }
  if (ref !== null && typeof ref !== "string") return fail("InvalidEnvelope", "ref must be a string or null")
  if (typeof topic !== "string") return fail("InvalidEnvelope", "topic must be a string")
  if (typeof event !== "string") return fail("InvalidEnvelope", "event must be a string")
  return Result.ok({ joinRef, ref, topic, event, payload: json[4] })
}

/** Encodes a message as a vsn 2.0.0 text frame. */
export const encodeV2Text = (message: Message): Result.Result<Frame, ProtocolIssue> => {
  const json = stringify(
    [message.joinRef, message.ref, message.topic, message.event, message.payload],
    "payload",
    message.event
  )
  return typeof json === "string" ? Result.ok(json) : Result.err(json)
}

/** Decodes a vsn 1.0.0 text frame: `{topic, event, payload, ref, join_ref}`. */
export const decodeV1Text = (frame: string): Result.Result<Message, ProtocolIssue> => {
  let json: unknown
  try {
    json = JSON.parse(frame)
  } catch (cause) {
    return fail("MalformedJson", describeCause(cause))
  }
  if (!isObject(json) || Array.isArray(json)) {
    return fail("InvalidEnvelope", "expected a JSON object {topic, event, payload, ref, join_ref}")
  }
  const topic = json.topic
  const event = json.event
  const payload = json.payload
  const ref = json.ref ?? null
  const joinRef = json.join_ref ?? null
  if (joinRef !== null && typeof joinRef !== "string") {
    return fail("InvalidEnvelope", "join_ref must be a string or null")
  }
  if (ref !== null && typeof ref !== "string") return fail("InvalidEnvelope", "ref must be a string or null")
  if (typeof topic !== "string") return fail("InvalidEnvelope", "topic must be a string")
  if (typeof event !== "string") return fail("InvalidEnvelope", "event must be a string")
  if (payload === undefined) return fail("InvalidEnvelope", "payload is missing")
  return Result.ok({ joinRef, ref, topic, event, payload })
}

/** Encodes a message as a vsn 1.0.0 text frame (`join_ref` only when `withJoinRef`). */
export const encodeV1Text = (message: Message, withJoinRef: boolean): Result.Result<Frame, ProtocolIssue> => {
  const invalid = checkMessage(message)
  if (invalid !== undefined) return Result.err(invalid)
  const payload = message.payload
  if (asBytes(payload) !== undefined || (isObject(payload) && asBytes(payload.payload) !== undefined)) {
    return fail("UnsupportedPayload", `binary payload of '${message.event}' needs vsn 2.0.0`)
  }
  const object = withJoinRef && message.joinRef !== null
    ? { topic: message.topic, event: message.event, payload, ref: message.ref, join_ref: message.joinRef }
    : { topic: message.topic, event: message.event, payload, ref: message.ref }
  const json = stringify(object, "payload", message.event)
  return typeof json === "string" ? Result.ok(json) : Result.err(json)
}

/** Decodes a vsn 1.0.0 frame (binary frames are not part of it). */
export const decodeV1 = (frame: Frame): Result.Result<Message, ProtocolIssue> =>
  typeof frame === "string"
    ? decodeV1Text(frame)
    : fail("InvalidEnvelope", "binary frames are not part of vsn 1.0.0")
