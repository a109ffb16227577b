/**
 * Errors, byte and string helpers shared by the text and binary codecs.
 */
import * as Result from "../result.js"
import { MAX_FIELD_LENGTH } from "./constants.js"
import { type Message, ProtocolIssue } from "./model.js"

/** Why a codec failed. */
export type Reason = ProtocolIssue["reason"]

/** A codec failure. */
export const error = (reason: Reason, detail: string): ProtocolIssue => new ProtocolIssue(reason, detail)

/** A failed codec result. */
export const fail = (reason: Reason, detail: string): Result.Result<never, ProtocolIssue> =>
  Result.err(new ProtocolIssue(reason, detail))

/** The message of a thrown value. */
export const describeCause = (cause: unknown): string => cause instanceof Error ? cause.message : String(cause)

/** The one UTF-8 encoder. */
export const textEncoder = new TextEncoder()
// `fatal`: invalid UTF-8 is an error, not U+FFFD; `ignoreBOM`: a leading U+FEFF is kept, not stripped
/** The one UTF-8 decoder. */
export const textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/** A view (not a copy) of `bytes[start, end)`, without the `Buffer` species. */
export const view = (bytes: Uint8Array, start: number, end: number): Uint8Array =>
  new Uint8Array(bytes.buffer, bytes.byteOffset + start, end - start)

/** A fresh copy of `bytes[start, end)`: never aliases the frame (the socket may reuse it). */
export const copy = (bytes: Uint8Array, start: number, end: number): Uint8Array => {
  const out = new Uint8Array(end - start)
  out.set(view(bytes, start, end))
  return out
}

/** `bytes[start, end)` as UTF-8, or `undefined` when it is not valid UTF-8. */
export const decodeUtf8 = (bytes: Uint8Array, start: number, end: number): string | undefined => {
  try {
    return textDecoder.decode(view(bytes, start, end))
  } catch {
    return undefined
  }
}

/**
 * `bytes[start, end)` as a string, or `undefined` when it is not valid UTF-8. Short ASCII strings are
 * built by hand (a `TextDecoder` call has a fixed cost of about 150 ns).
 */
export const readString = (bytes: Uint8Array, start: number, end: number): string | undefined => {
  if (end - start > 12) return decodeUtf8(bytes, start, end)
  let s = ""
  for (let i = start; i < end; i++) {
    const b = bytes[i]!
    if (b > 0x7f) return decodeUtf8(bytes, start, end)
    s += String.fromCharCode(b)
  }
  return s
}

/**
 * The string fields of a binary frame, `bytes[start, end)`, decoded in one go when they are pure ASCII
 * (then byte offsets are string offsets and each field is a slice), else `undefined` (and each field is
 * decoded on its own by `readField`, which also reports which one is not valid UTF-8).
 */
export const readRegion = (bytes: Uint8Array, start: number, end: number): string | undefined => {
  const s = readString(bytes, start, end)
  return s !== undefined && s.length === end - start ? s : undefined
}

/** A string field of a frame, out of the decoded region when there is one. */
export const readField = (
  bytes: Uint8Array,
  region: string | undefined,
  base: number,
  start: number,
  end: number
): string | undefined => region !== undefined ? region.slice(start - base, end - base) : readString(bytes, start, end)

/** `JSON.parse`, or a `MalformedJson` failure naming `what`. */
export const parseJson = (text: string, what: string): unknown => {
  try {
    return JSON.parse(text)
  } catch (cause) {
    return error("MalformedJson", `${what}: ${describeCause(cause)}`)
  }
}

/** `bytes[start, end)` parsed as UTF-8 JSON, or a `ProtocolIssue`. */
export const readJson = (bytes: Uint8Array, start: number, end: number, what: string): unknown => {
  const text = decodeUtf8(bytes, start, end)
  return text === undefined ? error("MalformedJson", `${what} is not valid UTF-8`) : parseJson(text, what)
}

/** The JSON metadata of kinds 3 and 4, out of the decoded region when there is one. */
export const readMeta = (
  bytes: Uint8Array,
  region: string | undefined,
  base: number,
  start: number,
  end: number
): unknown =>
  region !== undefined
    ? parseJson(region.slice(start - base, end - base), "broadcast metadata")
    : readJson(bytes, start, end, "broadcast metadata")

/** The UTF-8 byte length of `s` (a lone surrogate counts as U+FFFD, as `TextEncoder` writes it). */
export const utf8Length = (s: string): number => {
  const n = s.length
  let bytes = n
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) {
      bytes += 1
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2 // a surrogate pair: 2 code units, 4 bytes
      i++
    } else {
      bytes += 2
    }
  }
  return bytes
}

/** Writes `s` (of UTF-8 length `byteLength`) at `offset`; returns the offset after it. */
export const writeString = (s: string, out: Uint8Array, offset: number, byteLength: number): number => {
  if (byteLength === s.length) {
    for (let i = 0; i < byteLength; i++) out[offset + i] = s.charCodeAt(i)
  } else {
    textEncoder.encodeInto(s, view(out, offset, offset + byteLength))
  }
  return offset + byteLength
}

/** `Uint8Array`s as they are, `ArrayBuffer`s and other views as a `Uint8Array` over the same bytes. */
export const asBytes = (u: unknown): Uint8Array | undefined => {
  if (u instanceof Uint8Array) return u
  if (u instanceof ArrayBuffer) return new Uint8Array(u)
  if (ArrayBuffer.isView(u)) return new Uint8Array(u.buffer, u.byteOffset, u.byteLength)
  return undefined
}

/** A non-null object (arrays included). */
export const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null

/** `Object.prototype.hasOwnProperty`. */
export const hasOwn = Object.prototype.hasOwnProperty

/**
 * A binary frame: `kind`, one length byte per field, the `encoding` byte (if `encoding >= 0`), the
 * fields in UTF-8, then `body`.
 */
export const buildFrame = (
  kind: number,
  names: ReadonlyArray<string>,
  fields: ReadonlyArray<string>,
  encoding: number,
  body: unknown
): Result.Result<Uint8Array, ProtocolIssue> => {
  const bytes = asBytes(body)
  if (bytes === undefined) return fail("UnsupportedPayload", `the data of a kind ${kind} binary frame must be bytes`)
  const n = fields.length
  const lengths: Array<number> = new Array(n)
  let total = 1 + n + (encoding >= 0 ? 1 : 0) + bytes.length
  for (let i = 0; i < n; i++) {
    const field = fields[i]
    if (typeof field !== "string") return fail("InvalidEnvelope", `${names[i]} must be a string`)
    const length = utf8Length(field)
    if (length > MAX_FIELD_LENGTH) {
      return fail("FieldTooLong", `${names[i]} length ${length} exceeds maximum of ${MAX_FIELD_LENGTH}`)
    }
    lengths[i] = length
    total += length
  }
  const out = new Uint8Array(total)
  out[0] = kind
  let offset = 1
  for (let i = 0; i < n; i++) out[offset++] = lengths[i]!
  if (encoding >= 0) out[offset++] = encoding
  for (let i = 0; i < n; i++) offset = writeString(fields[i]!, out, offset, lengths[i]!)
  out.set(bytes, offset)
  return Result.ok(out)
}

/** `JSON.stringify`, or an `UnsupportedPayload` error (`what`, `event` only describe it, on failure). */
export const stringify = (value: unknown, what: string, event?: string): string | ProtocolIssue => {
  let json: string | undefined
  let cause = ""
  try {
    json = JSON.stringify(value)
  } catch (e) {
    cause = `: ${describeCause(e)}`
  }
  return json !== undefined
    ? json
    : error(
      "UnsupportedPayload",
      `${what}${event === undefined ? "" : ` of '${event}'`} cannot be encoded as JSON${cause}`
    )
}

/** A user payload: raw bytes (encoding 0) or UTF-8 JSON (encoding 1, `undefined`/`null` as `{}`). */
export const userPayloadBody = (payload: unknown): Uint8Array | ProtocolIssue => {
  const bytes = asBytes(payload)
  if (bytes !== undefined) return bytes
  const json = stringify(payload ?? {}, "broadcast payload")
  return typeof json === "string" ? textEncoder.encode(json) : json
}

/** Why a message cannot be encoded (its envelope fields), or `undefined`. */
export const checkMessage = (message: Message): ProtocolIssue | undefined => {
  if (!isObject(message)) return error("InvalidEnvelope", "message is not an object")
  const { event, joinRef, ref, topic } = message
  if (typeof topic !== "string") return error("InvalidEnvelope", "topic must be a string")
  if (typeof event !== "string") return error("InvalidEnvelope", "event must be a string")
  if (joinRef !== null && typeof joinRef !== "string") {
    return error("InvalidEnvelope", "join_ref must be a string or null")
  }
  if (ref !== null && typeof ref !== "string") return error("InvalidEnvelope", "ref must be a string or null")
  return undefined
}

/** A `TruncatedFrame` failure. */
export const truncated = (kind: number, length: number, needed: number): Result.Result<never, ProtocolIssue> =>
  fail("TruncatedFrame", `binary frame of kind ${kind} has ${length} bytes, its header declares at least ${needed}`)

/** An `InvalidEnvelope` failure for a field that is not valid UTF-8. */
export const invalidString = (kind: number, field: string): Result.Result<never, ProtocolIssue> =>
  fail("InvalidEnvelope", `${field} of a kind ${kind} binary frame is not valid UTF-8`)

/** An `InvalidEnvelope` failure for an unknown payload encoding. */
export const unknownEncoding = (kind: number, encoding: number): Result.Result<never, ProtocolIssue> =>
  fail("InvalidEnvelope", `unknown payload encoding ${encoding} in a kind ${kind} binary frame`)

/** An `UnknownBinaryKind` failure. */
export const unknownKind = (kind: number, side: string): Result.Result<never, ProtocolIssue> =>
  fail("UnknownBinaryKind", `binary frame of kind ${kind} is not decoded by the ${side}`)
