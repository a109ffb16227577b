/**
 * Broadcast over REST without the HTTP: the checks, URLs, bodies and failure texts of the Realtime
 * server's broadcast API (`POST <realtime>/api/broadcast` and `POST …/<topic>/events/<event>`),
 * shared by both editions' `HttpBroadcast`. Each edition performs the request and turns a failed
 * `Result` into its own `InvalidArgument`, and a `Failure` into its own `HttpBroadcastFailed`.
 */
import * as Describe from "../describe.js"
import * as Guards from "../guards.js"
import * as Result from "../result.js"
import * as Topic from "../topic.js"

/** The per-request timeout when none is given, in milliseconds (10 seconds, as realtime-js). */
export const DEFAULT_TIMEOUT_MILLIS = 10_000

/** Why a broadcast over REST failed: the status class of the answer, or no answer. */
export type Reason =
  | "Unauthorized"
  | "Forbidden"
  | "NotFound"
  | "PayloadTooLarge"
  | "UnsupportedMediaType"
  | "Invalid"
  | "RateLimited"
  | "ServerError"
  | "UnexpectedStatus"
  | "Transport"
  | "Timeout"

/** The fields of an `HttpBroadcastFailed` for a non-2xx answer. */
export interface Failure {
  readonly reason: Reason
  readonly status: number
  readonly body?: unknown
  readonly detail: string
}

/** Store the message for replay: `true`, or for `ttl` seconds. */
export type Persist = boolean | { readonly ttl: number }

/** The options of one `send` that go in its URL (the editions' `SendOptions` extend them). */
export interface SingleEventOptions {
  /** A private channel (`?private=true`): the server checks the token's RLS write policy. */
  readonly private?: boolean | undefined
  /** Store the message for replay (see {@link Persist}). */
  readonly persist?: Persist | undefined
}

/**
 * One message of a batch, as the caller gives it (each edition's `BatchMessage`). `topic` with or
 * without the `realtime:` prefix; `payload` a JSON object.
 */
export interface BatchMessage {
  readonly topic: string
  readonly event: string
  /** Must be a JSON object (not an array, not `null`, not bytes): the batch endpoint refuses others. */
  readonly payload: unknown
  /** A private channel: the server checks the token's RLS write policy per topic. */
  readonly private?: boolean | undefined
  /** A message id (a UUID), delivered to subscribers in `meta.id`. */
  readonly id?: string | undefined
}

/** One message of a batch as it goes on the wire: the topic without its `realtime:` prefix. */
export interface WireMessage {
  readonly topic: string
  readonly event: string
  readonly payload: unknown
  readonly private: boolean
  readonly id?: string
}

/** The body of `send`: raw bytes, or JSON text. */
export type SingleEventBody =
  | { readonly bytes: Uint8Array; readonly json?: undefined }
  | { readonly bytes?: undefined; readonly json: string }

/** `Ok` when `key` is a non-blank string. */
export const checkApiKey = (key: unknown): Result.Result<void, string> =>
  typeof key === "string" && key.trim() !== ""
    ? Result.ok(undefined)
    : Result.err("HttpBroadcast: apiKey must not be empty or blank")

/** The detail of the error for a timeout that is not a positive duration. */
export const invalidTimeout = (input: unknown): string =>
  `HttpBroadcast: timeout must be a positive duration, got ${String(input)}`

/** The topic without its `realtime:` prefix (`Topic.subTopicOf`); an error when that is empty or not a string. */
export const checkTopic = (topic: string): Result.Result<string, string> => {
  const sub = typeof topic === "string" ? Topic.subTopicOf(topic) : topic
  return typeof sub === "string" && sub !== ""
    ? Result.ok(sub)
    : Result.err(`HttpBroadcast: invalid topic ${JSON.stringify(topic)}`)
}

/** `Ok` when `event` is a non-empty string. */
export const checkEvent = (event: string): Result.Result<void, string> =>
  typeof event === "string" && event !== ""
    ? Result.ok(undefined)
    : Result.err(`HttpBroadcast: invalid event ${JSON.stringify(event)}`)

/**
 * A path segment of the single-event endpoint. `.` and `..` are refused: the URL parser resolves
 * them (percent-encoded too: `%2e` is a dot segment for WHATWG URLs), and the request, with the
 * apikey and the token, would go to another path of the host.
 */
export const pathSegment = (what: "topic" | "event", value: string): Result.Result<string, string> =>
  value === "." || value === ".."
    ? Result.err(
      `HttpBroadcast.send: the ${what} '${value}' cannot be a URL path segment (use sendBatch, or another ${what})`
    )
    : Result.ok(encodeURIComponent(value))

/**
 * The URL of the single-event endpoint under `base`:
 * `<base>/<topic>/events/<event>?private=true&persist=true|persist[ttl]=<n>`.
 */
export const singleEventUrl = (
  base: string,
  subtopic: string,
  event: string,
  options: SingleEventOptions | undefined
): Result.Result<string, string> => {
  const params: Array<readonly [string, string]> = []
  if (options?.private === true) params.push(["private", "true"])
  const persist = options?.persist
  if (persist === true) {
    params.push(["persist", "true"])
  } else if (persist !== undefined && persist !== false) {
    if (!Guards.isRecord(persist) || !Number.isInteger(persist.ttl) || persist.ttl <= 0) {
      return Result.err("HttpBroadcast.send: persist must be true or { ttl } with a positive integer ttl (seconds)")
    }
    params.push(["persist[ttl]", String(persist.ttl)])
  }
  const topicSegment = pathSegment("topic", subtopic)
  if (!topicSegment.ok) return topicSegment
  const eventSegment = pathSegment("event", event)
  if (!eventSegment.ok) return eventSegment
  const url = new URL(`${base}/${topicSegment.value}/events/${eventSegment.value}`)
  for (const [key, value] of params) url.searchParams.append(key, value)
  return Result.ok(url.toString())
}

/** The body of `send`: raw bytes, or any JSON value but `null` / `undefined` as JSON text. */
export const singleEventBody = (
  subtopic: string,
  event: string,
  payload: unknown
): Result.Result<SingleEventBody, string> => {
  const bytes = toBytes(payload)
  if (bytes !== undefined) return Result.ok({ bytes })
  if (payload === null || payload === undefined) {
    return Result.err(
      `HttpBroadcast.send: a payload is required for '${event}' on '${subtopic}' (null and undefined are not sent)`
    )
  }
  return Result.map(
    stringify(payload, `HttpBroadcast.send: payload of '${event}' on '${subtopic}'`),
    (json) => ({ json })
  )
}

/** The bytes of a binary payload (`Uint8Array`, `ArrayBuffer`, any `ArrayBufferView`), without copying. */
export const toBytes = (payload: unknown): Uint8Array | undefined => {
  if (payload instanceof Uint8Array) return payload
  if (payload instanceof ArrayBuffer) return new Uint8Array(payload)
  if (ArrayBuffer.isView(payload)) return new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength)
  return undefined
}

/** `value` as JSON text; an error naming `what` when it is not JSON-serializable. */
export const stringify = (value: unknown, what: string): Result.Result<string, string> => {
  try {
    const json = JSON.stringify(value)
    return typeof json === "string" ? Result.ok(json) : Result.err(`${what} is not JSON-serializable`)
  } catch (cause) {
    return Result.err(`${what} is not JSON-serializable: ${cause instanceof Error ? cause.message : String(cause)}`)
  }
}

/** Message `index` of a batch checked and made ready for the wire. */
export const wireMessage = (message: BatchMessage, index: number): Result.Result<WireMessage, string> => {
  const where = `HttpBroadcast.sendBatch: message ${index}`
  if (!Guards.isRecord(message)) return Result.err(`${where} is not an object`)
  const topic = checkTopic(message.topic)
  if (!topic.ok) return Result.err(`${where}: ${topic.error}`)
  const event = checkEvent(message.event)
  if (!event.ok) return Result.err(`${where}: ${event.error}`)
  if (!Guards.isJsonObject(message.payload)) {
    return Result.err(
      `${where} ('${message.event}' on '${topic.value}'): the batch endpoint needs a JSON object payload`
    )
  }
  if (message.private !== undefined && typeof message.private !== "boolean") {
    return Result.err(`${where}: private must be a boolean`)
  }
  if (message.id !== undefined && (typeof message.id !== "string" || message.id === "")) {
    return Result.err(`${where}: id must be a non-empty string`)
  }
  const isPrivate = message.private === true
  return Result.ok(
    message.id === undefined
      ? { topic: topic.value, event: message.event, payload: message.payload, private: isPrivate }
      : { topic: topic.value, event: message.event, payload: message.payload, private: isPrivate, id: message.id }
  )
}

/** Every message of a batch checked and made ready for the wire; the first bad one's error. */
export const wireMessages = (messages: Iterable<BatchMessage>): Result.Result<Array<WireMessage>, string> => {
  const out: Array<WireMessage> = []
  for (const message of messages) {
    const wire = wireMessage(message, out.length)
    if (!wire.ok) return wire
    out.push(wire.value)
  }
  return Result.ok(out)
}

/** The JSON text of a batch request's body. */
export const batchBody = (messages: ReadonlyArray<WireMessage>): Result.Result<string, string> =>
  stringify({ messages }, "HttpBroadcast.sendBatch: messages")

/** A span attribute for the distinct values, capped so a large batch stays a small attribute. */
export const distinct = (values: ReadonlyArray<string>): string => {
  const unique = Array.from(new Set(values))
  return unique.length > 10 ? `${unique.slice(0, 10).join(",")},…` : unique.join(",")
}

/** The header names a client redacts on its spans, with `apikey` among them. */
export const redactApiKey = (names: ReadonlyArray<string | RegExp>): ReadonlyArray<string | RegExp> =>
  names.includes("apikey") ? names : [...names, "apikey"]

/** Whether a failure for `reason` is worth retrying: 429, 5xx and transport failures. */
export const isRetryable = (reason: Reason): boolean =>
  reason === "RateLimited" || reason === "ServerError" || reason === "Transport"

/** The detail of a `Timeout` failure. */
export const timeoutDetail = (url: string, millis: number): string => `no response from POST ${url} within ${millis} ms`

/** The detail of a `Transport` failure: the client error's message, and its cause's when it has one. */
export const transportDetail = (message: string, cause: unknown): string => {
  const causeMessage = cause instanceof Error ? cause.message : cause === undefined ? undefined : String(cause)
  return causeMessage === undefined || causeMessage === "" ? message : `${message}: ${causeMessage}`
}

/** The reason of a non-2xx status. */
export const reasonOf = (status: number): Reason => {
  switch (status) {
    case 401:
      return "Unauthorized"
    case 403:
      return "Forbidden"
    case 404:
      return "NotFound"
    case 413:
      return "PayloadTooLarge"
    case 415:
      return "UnsupportedMediaType"
    case 422:
      return "Invalid"
    case 429:
      return "RateLimited"
    default:
      return status >= 500 && status <= 599 ? "ServerError" : "UnexpectedStatus"
  }
}

/** A response body: `undefined` when empty, the JSON value when it parses, the text otherwise. */
export const parseBody = (text: string): unknown => {
  if (text === "") return undefined
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

// the body comes from the wire: below the few levels of an error map, it is described bounded
const formatErrors = (u: unknown, depth = 0): string => {
  if (typeof u === "string") return u
  if (depth >= 4) return Describe.describe(u, { maxLength: 200 })
  if (Array.isArray(u)) return u.map((e) => formatErrors(e, depth + 1)).join(", ")
  if (Guards.isRecord(u)) {
    return Object.entries(u).map(([key, value]) => `${key}: ${formatErrors(value, depth + 1)}`).join("; ")
  }
  return Describe.describe(u)
}

// the server's words, cut to 500 characters: a body is the server's to size
const bounded = (text: string): string => text.length > 500 ? `${text.slice(0, 500)}…` : text

/** The server's message in a response body (`message`, `error` or `errors`), bounded; none when absent. */
export const detailOf = (body: unknown): string | undefined => {
  if (typeof body === "string") return bounded(body)
  if (!Guards.isRecord(body)) return undefined
  if (typeof body.message === "string" && body.message !== "") return bounded(body.message)
  if (typeof body.error === "string" && body.error !== "") return bounded(body.error)
  if (body.errors !== undefined && body.errors !== null) return Describe.truncate(formatErrors(body.errors))
  return undefined
}

/** The detail of a 404 from the single-event endpoint: the server predates it. */
export const NOT_FOUND_SINGLE =
  "the single-event endpoint needs Realtime server v2.97.0 or newer and this server answered 404: " +
  "upgrade the Realtime server (or the Supabase CLI), or send with sendBatch, which every server version supports"

/**
 * The failure an answer makes: `undefined` for a 2xx, otherwise its reason, status, parsed body and
 * detail (`single`: the answer of the single-event endpoint, whose 404 means the server is too old).
 */
export const responseFailure = (status: number, text: string, single: boolean): Failure | undefined => {
  if (status >= 200 && status < 300) return undefined
  const body = parseBody(text)
  const reason = reasonOf(status)
  const detail = reason === "NotFound" && single
    ? NOT_FOUND_SINGLE
    : detailOf(body) ?? `the server answered ${status} without a message`
  return body === undefined ? { reason, status, detail } : { reason, status, body, detail }
}
