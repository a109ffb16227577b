/**
 * Broadcast over REST: the Realtime server's HTTP API, for sending without a joined channel (the
 * channel's fallback when it is not joined, server-side senders, one-off notifications).
 *
 * Two endpoints, both under `<realtime>/api/broadcast`:
 * - `send`: the single-event endpoint `POST /api/broadcast/<topic>/events/<event>` (Realtime server
 *   ≥ v2.97.0): any JSON value, or raw bytes (`Uint8Array`, `ArrayBuffer`, any `ArrayBufferView`)
 *   delivered as a binary broadcast; `private` and `persist` as query parameters.
 * - `sendBatch`: the batch endpoint `POST /api/broadcast` (any server version): many JSON-object
 *   messages in one request.
 *
 * Every request carries `apikey: <key>` and `Authorization: Bearer <token>` as headers (the apikey is
 * never put in the URL), no tracing headers (`b3` / `traceparent` would make browsers preflight),
 * and a non-2xx answer fails with `HttpBroadcastFailed` carrying the status and the server's body.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Headers from "effect/http/Headers"
import * as HttpClient from "effect/http/HttpClient"
import type * as HttpClientError from "effect/http/HttpClientError"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import type * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Schedule from "effect/Schedule"
import * as Describe from "../../src/core/describe.js"
import { isJsonObject, isRecord } from "../../src/core/guards.js"
import * as CoreResult from "../../src/core/result.js"
import * as Url from "../../src/core/url.js"
import { AccessToken } from "./AccessToken.js"
import type { AccessTokenError } from "./RealtimeError.js"
import { HttpBroadcastFailed, InvalidArgument } from "./RealtimeError.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: "~supabase-realtime-effect/HttpBroadcast" = "~supabase-realtime-effect/HttpBroadcast"

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * What a broadcast over REST can fail with: the server's refusal or a transport failure or timeout
 * (`HttpBroadcastFailed`), bad input caught before any request (`InvalidArgument`), or the token
 * source failing (`AccessTokenError`).
 *
 * @since 0.1.0
 * @category errors
 */
export type HttpBroadcastError = HttpBroadcastFailed | InvalidArgument | AccessTokenError

/**
 * Store the message for replay: `true`, or for `ttl` seconds. Sent as `persist=true` or
 * `persist[ttl]=<n>` as realtime-js sends it; a server without persist support ignores it.
 *
 * @since 0.1.0
 * @category models
 */
export type Persist = boolean | { readonly ttl: number }

/**
 * Options of one `send`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SendOptions {
  /** A private channel (`?private=true`): the server checks the token's RLS write policy. */
  readonly private?: boolean | undefined
  /** Store the message for replay (see {@link Persist}). */
  readonly persist?: Persist | undefined
  /** Overrides the layer's per-request timeout for this call. */
  readonly timeout?: Duration.Input | undefined
}

/**
 * One message of a batch. `topic` with or without the `realtime:` prefix; `payload` a JSON object.
 *
 * @since 0.1.0
 * @category models
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

/**
 * Options of one `sendBatch`.
 *
 * @since 0.1.0
 * @category models
 */
export interface BatchOptions {
  /** Overrides the layer's per-request timeout for this call. */
  readonly timeout?: Duration.Input | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface HttpBroadcast {
  readonly [TypeId]: TypeId
  /** The broadcast API base, e.g. `https://<ref>.supabase.co/realtime/v1/api/broadcast`. */
  readonly endpoint: string
  /**
   * Sends one event on the single-event endpoint (Realtime server ≥ v2.97.0; older servers answer
   * 404, reported as `NotFound`). `payload` is any JSON value except `null` / `undefined`, sent as
   * `application/json`, or bytes (`Uint8Array`, `ArrayBuffer`, any `ArrayBufferView`) sent as
   * `application/octet-stream`. `topic` is accepted with or without the `realtime:` prefix.
   * Topic and event go in the URL path: `.` and `..` fail with `InvalidArgument` (a URL resolves
   * them). Succeeds on any 2xx (the server answers 202).
   */
  readonly send: (
    topic: string,
    event: string,
    payload: unknown,
    options?: SendOptions
  ) => Effect.Effect<void, HttpBroadcastError>
  /**
   * Sends many messages in one request on the batch endpoint (any server version). Every payload
   * must be a JSON object; a bad message fails the call with `InvalidArgument` before any request.
   * An empty batch sends nothing. Note that the server answers 202 even when it drops private
   * messages whose topic's RLS write policy denies the caller.
   */
  readonly sendBatch: (
    messages: Iterable<BatchMessage>,
    options?: BatchOptions
  ) => Effect.Effect<void, HttpBroadcastError>
}

/**
 * The service key.
 *
 * @since 0.1.0
 * @category tags
 */
export const HttpBroadcast: Context.Service<HttpBroadcast, HttpBroadcast> = Context.Service<HttpBroadcast>(
  "supabase-realtime-effect/HttpBroadcast"
)

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * The Realtime endpoint in any form the client accepts: a project URL `https://<ref>.supabase.co`,
   * `wss://<ref>.supabase.co/realtime/v1[/websocket]`, or a self-hosted `ws://host:4000/socket`.
   * No query string: the apikey goes in `apiKey`.
   */
  readonly url: string
  /** The project's apikey, sent in the `apikey` header only; kept `Redacted`. */
  readonly apiKey: string | Redacted.Redacted<string>
  /** Per-request timeout (each attempt when retrying). Default 10 seconds, as realtime-js. */
  readonly timeout?: Duration.Input | undefined
  /**
   * Retries, off by default. The schedule is fed the `HttpBroadcastFailed` of each failed attempt
   * and applies only to `RateLimited` (429), `ServerError` (5xx) and `Transport` failures; other
   * statuses, timeouts (the server may have accepted the message), bad input and token errors fail
   * at once. A retry may deliver a message twice when the server accepted it but the answer was
   * lost. The token is read once per call, not per attempt.
   *
   * ```ts
   * HttpBroadcast.layer({ url, apiKey, retry: Schedule.exponential("200 millis").pipe(Schedule.upTo({ times: 3 })) })
   * ```
   */
  readonly retry?: Schedule.Schedule<unknown, HttpBroadcastFailed> | undefined
}

const DEFAULT_TIMEOUT = Duration.seconds(10)

/**
 * Builds the service over the `HttpClient` and the `AccessToken` source of the context.
 *
 * Authorization: `Bearer <token>` with the token source's `refresh` result, or `Bearer <apikey>`
 * when there is no token (the server accepts the apikey as a bearer token; the anon key then
 * authorizes as the `anon` role). Fails with `InvalidArgument` for a bad URL, key or timeout.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<HttpBroadcast, InvalidArgument, HttpClient.HttpClient | AccessToken> =>
  Effect.gen(function*() {
    const endpoint = yield* invalidArgument(Url.parseEndpoint(options.url))
    const apiKey = Redacted.isRedacted(options.apiKey) ? options.apiKey : Redacted.make(options.apiKey)
    if (typeof Redacted.value(apiKey) !== "string" || Redacted.value(apiKey).trim() === "") {
      return yield* new InvalidArgument({ detail: "HttpBroadcast: apiKey must not be empty or blank" })
    }
    const defaultTimeout = yield* invalidArgument(decodeTimeout(options.timeout, DEFAULT_TIMEOUT))
    const tokens = yield* AccessToken
    const client = (yield* HttpClient.HttpClient).pipe(
      HttpClient.transformResponse((response) =>
        response.pipe(
          // b3 / traceparent headers would make browsers preflight every request
          Effect.provideService(HttpClient.TracerPropagationEnabled, false),
          // the client records the request headers it is told to on its span: never the apikey
          Effect.updateService(Headers.CurrentRedactedNames, redactApiKey)
        )
      )
    )
    const retry = options.retry
    const base = endpoint.broadcast

    const execute = (
      request: HttpClientRequest.HttpClientRequest,
      url: string,
      timeout: Duration.Duration,
      single: boolean
    ): Effect.Effect<void, HttpBroadcastFailed | AccessTokenError> =>
      Effect.flatMap(tokens.refresh, (token) => {
        const key = Redacted.value(apiKey)
        const authorized = HttpClientRequest.setHeaders(request, {
          apikey: key,
          authorization: `Bearer ${Option.getOrElse(token, () => key)}`
        })
        const attempt = client.execute(authorized).pipe(
          Effect.mapError(transportError),
          Effect.flatMap((response) => handleResponse(response, single)),
          withTimeout(timeout, url),
          Effect.tap((status) =>
            Effect.logDebug("HTTP broadcast accepted").pipe(Effect.annotateLogs({ method: "POST", url, status }))
          ),
          Effect.tapError((error) =>
            Effect.logDebug("HTTP broadcast failed").pipe(
              Effect.annotateLogs({ method: "POST", url, status: error.status ?? error.reason })
            )
          ),
          Effect.asVoid
        )
        return retry === undefined ? attempt : Effect.retry(attempt, { schedule: retry, while: isRetryable })
      })

    const send = Effect.fn("HttpBroadcast.send")(function*(
      topic: string,
      event: string,
      payload: unknown,
      sendOptions?: SendOptions
    ): Effect.fn.Return<void, HttpBroadcastError> {
      const subtopic = yield* invalidArgument(subTopic(topic))
      yield* invalidArgument(checkEvent(event))
      yield* Effect.annotateCurrentSpan({ topic: subtopic, event, private: sendOptions?.private === true })
      const timeout = yield* invalidArgument(decodeTimeout(sendOptions?.timeout, defaultTimeout))
      const url = yield* invalidArgument(singleEventUrl(base, subtopic, event, sendOptions))
      const body = yield* invalidArgument(singleEventBody(subtopic, event, payload))
      const request = HttpClientRequest.post(url).pipe(
        HttpClientRequest.acceptJson,
        body.bytes !== undefined
          ? HttpClientRequest.bodyUint8Array(body.bytes, "application/octet-stream")
          : HttpClientRequest.bodyText(body.json, "application/json")
      )
      return yield* execute(request, url, timeout, true)
    })

    const sendBatch = Effect.fn("HttpBroadcast.sendBatch")(function*(
      messages: Iterable<BatchMessage>,
      batchOptions?: BatchOptions
    ): Effect.fn.Return<void, HttpBroadcastError> {
      const timeout = yield* invalidArgument(decodeTimeout(batchOptions?.timeout, defaultTimeout))
      const body: Array<WireMessage> = []
      for (const message of messages) {
        body.push(yield* invalidArgument(wireMessage(message, body.length)))
      }
      yield* Effect.annotateCurrentSpan({
        messages: body.length,
        topics: distinct(body.map((m) => m.topic)),
        events: distinct(body.map((m) => m.event))
      })
      if (body.length === 0) return
      const json = yield* invalidArgument(stringify({ messages: body }, "HttpBroadcast.sendBatch: messages"))
      const request = HttpClientRequest.post(base).pipe(
        HttpClientRequest.acceptJson,
        HttpClientRequest.bodyText(json, "application/json")
      )
      return yield* execute(request, base, timeout, false)
    })

    return HttpBroadcast.of({ [TypeId]: TypeId, endpoint: base, send, sendBatch })
  })

/**
 * The service as a layer. Needs an `HttpClient` (`FetchHttpClient.layer`, `NodeHttpClient.layerUndici`)
 * and an `AccessToken` source (`AccessToken.layerNone` to authorize with the apikey alone).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<HttpBroadcast, InvalidArgument, HttpClient.HttpClient | AccessToken> =>
  Layer.effect(HttpBroadcast, make(options))

// -----------------------------------------------------------------------------
// internal: Effect wiring
// -----------------------------------------------------------------------------

// a check's detail as an `InvalidArgument`
const invalidArgument = <A>(result: CoreResult.Result<A, string>): Effect.Effect<A, InvalidArgument> =>
  result.ok ? Effect.succeed(result.value) : Effect.fail(new InvalidArgument({ detail: result.error }))

const redactApiKey = (names: ReadonlyArray<string | RegExp>): ReadonlyArray<string | RegExp> =>
  names.includes("apikey") ? names : [...names, "apikey"]

const withTimeout =
  (timeout: Duration.Duration, url: string) =>
  <A>(effect: Effect.Effect<A, HttpBroadcastFailed>): Effect.Effect<A, HttpBroadcastFailed> =>
    Duration.isFinite(timeout)
      ? Effect.timeoutOrElse(effect, {
        duration: timeout,
        orElse: () =>
          Effect.fail(
            new HttpBroadcastFailed({
              reason: "Timeout",
              detail: `no response from POST ${url} within ${Duration.toMillis(timeout)} ms`
            })
          )
      })
      : effect

const isRetryable = (error: HttpBroadcastFailed): boolean =>
  error.reason === "RateLimited" || error.reason === "ServerError" || error.reason === "Transport"

// Effect 4's client fails with one `HttpClientError` whatever the reason (transport, encoding, a bad
// URL): the request never got an answer, so all of them are `Transport`.
const transportError = (error: HttpClientError.HttpClientError): HttpBroadcastFailed => {
  const cause = error.cause
  const causeMessage = cause instanceof Error ? cause.message : cause === undefined ? undefined : String(cause)
  return new HttpBroadcastFailed({
    reason: "Transport",
    detail: causeMessage === undefined || causeMessage === "" ? error.message : `${error.message}: ${causeMessage}`
  })
}

const handleResponse = (
  response: HttpClientResponse.HttpClientResponse,
  single: boolean
): Effect.Effect<number, HttpBroadcastFailed> =>
  response.text.pipe(
    Effect.orElseSucceed(() => ""),
    Effect.flatMap((text) => {
      const failure = responseFailure(response.status, text, single)
      return failure === undefined ? Effect.succeed(response.status) : Effect.fail(new HttpBroadcastFailed(failure))
    })
  )

// -----------------------------------------------------------------------------
// internal: pure (no Effect; to move to the core)
// -----------------------------------------------------------------------------

const PREFIX = "realtime:"

interface WireMessage {
  readonly topic: string
  readonly event: string
  readonly payload: unknown
  readonly private: boolean
  readonly id?: string
}

// a span attribute for the distinct values, capped so a large batch stays a small attribute
const distinct = (values: ReadonlyArray<string>): string => {
  const unique = Array.from(new Set(values))
  return unique.length > 10 ? `${unique.slice(0, 10).join(",")},…` : unique.join(",")
}

// Effect 4 durations may be negative (and NaN decodes to zero): only a positive one is a timeout
const decodeTimeout = (
  input: Duration.Input | undefined,
  fallback: Duration.Duration
): CoreResult.Result<Duration.Duration, string> => {
  if (input === undefined) return CoreResult.ok(fallback)
  const decoded = Duration.fromInput(input)
  return Option.isSome(decoded) && Duration.isPositive(decoded.value)
    ? CoreResult.ok(decoded.value)
    : CoreResult.err(`HttpBroadcast: timeout must be a positive duration, got ${String(input)}`)
}

const subTopic = (topic: string): CoreResult.Result<string, string> => {
  const sub = typeof topic === "string" && topic.startsWith(PREFIX) ? topic.slice(PREFIX.length) : topic
  return typeof sub === "string" && sub !== ""
    ? CoreResult.ok(sub)
    : CoreResult.err(`HttpBroadcast: invalid topic ${JSON.stringify(topic)}`)
}

const checkEvent = (event: string): CoreResult.Result<void, string> =>
  typeof event === "string" && event !== ""
    ? CoreResult.ok(undefined)
    : CoreResult.err(`HttpBroadcast: invalid event ${JSON.stringify(event)}`)

/**
 * A path segment of the single-event endpoint. `.` and `..` are refused: the URL parser resolves
 * them (percent-encoded too: `%2e` is a dot segment for WHATWG URLs), and the request, with the
 * apikey and the token, would go to another path of the host.
 */
const pathSegment = (what: "topic" | "event", value: string): CoreResult.Result<string, string> =>
  value === "." || value === ".."
    ? CoreResult.err(
      `HttpBroadcast.send: the ${what} '${value}' cannot be a URL path segment (use sendBatch, or another ${what})`
    )
    : CoreResult.ok(encodeURIComponent(value))

// `/<topic>/events/<event>?private=true&persist=true|persist[ttl]=<n>`
const singleEventUrl = (
  base: string,
  subtopic: string,
  event: string,
  options: SendOptions | undefined
): CoreResult.Result<string, string> => {
  const params: Array<readonly [string, string]> = []
  if (options?.private === true) params.push(["private", "true"])
  const persist = options?.persist
  if (persist === true) {
    params.push(["persist", "true"])
  } else if (persist !== undefined && persist !== false) {
    if (!isRecord(persist) || !Number.isInteger(persist.ttl) || persist.ttl <= 0) {
      return CoreResult.err(
        "HttpBroadcast.send: persist must be true or { ttl } with a positive integer ttl (seconds)"
      )
    }
    params.push(["persist[ttl]", String(persist.ttl)])
  }
  const topicSegment = pathSegment("topic", subtopic)
  if (!topicSegment.ok) return topicSegment
  const eventSegment = pathSegment("event", event)
  if (!eventSegment.ok) return eventSegment
  const url = new URL(`${base}/${topicSegment.value}/events/${eventSegment.value}`)
  for (const [key, value] of params) url.searchParams.append(key, value)
  return CoreResult.ok(url.toString())
}

// the body of `send`: raw bytes, or any JSON value but `null` / `undefined`
const singleEventBody = (
  subtopic: string,
  event: string,
  payload: unknown
): CoreResult.Result<
  { readonly bytes: Uint8Array; readonly json?: undefined } | { readonly bytes?: undefined; readonly json: string },
  string
> => {
  const bytes = toBytes(payload)
  if (bytes !== undefined) return CoreResult.ok({ bytes })
  if (payload === null || payload === undefined) {
    return CoreResult.err(
      `HttpBroadcast.send: a payload is required for '${event}' on '${subtopic}' (null and undefined are not sent)`
    )
  }
  return CoreResult.map(
    stringify(payload, `HttpBroadcast.send: payload of '${event}' on '${subtopic}'`),
    (json) => ({ json })
  )
}

const toBytes = (payload: unknown): Uint8Array | undefined => {
  if (payload instanceof Uint8Array) return payload
  if (payload instanceof ArrayBuffer) return new Uint8Array(payload)
  if (ArrayBuffer.isView(payload)) return new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength)
  return undefined
}

const stringify = (value: unknown, what: string): CoreResult.Result<string, string> => {
  try {
    const json = JSON.stringify(value)
    return typeof json === "string" ? CoreResult.ok(json) : CoreResult.err(`${what} is not JSON-serializable`)
  } catch (cause) {
    return CoreResult.err(
      `${what} is not JSON-serializable: ${cause instanceof Error ? cause.message : String(cause)}`
    )
  }
}

const wireMessage = (message: BatchMessage, index: number): CoreResult.Result<WireMessage, string> => {
  const where = `HttpBroadcast.sendBatch: message ${index}`
  if (!isRecord(message)) return CoreResult.err(`${where} is not an object`)
  const topic = subTopic(message.topic)
  if (!topic.ok) return CoreResult.err(`${where}: ${topic.error}`)
  const event = checkEvent(message.event)
  if (!event.ok) return CoreResult.err(`${where}: ${event.error}`)
  if (!isJsonObject(message.payload)) {
    return CoreResult.err(
      `${where} ('${message.event}' on '${topic.value}'): the batch endpoint needs a JSON object payload`
    )
  }
  if (message.private !== undefined && typeof message.private !== "boolean") {
    return CoreResult.err(`${where}: private must be a boolean`)
  }
  if (message.id !== undefined && (typeof message.id !== "string" || message.id === "")) {
    return CoreResult.err(`${where}: id must be a non-empty string`)
  }
  const isPrivate = message.private === true
  return CoreResult.ok(
    message.id === undefined
      ? { topic: topic.value, event: message.event, payload: message.payload, private: isPrivate }
      : { topic: topic.value, event: message.event, payload: message.payload, private: isPrivate, id: message.id }
  )
}

const reasonOf = (status: number): HttpBroadcastFailed["reason"] => {
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

const parseBody = (text: string): unknown => {
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
  if (isRecord(u)) {
    return Object.entries(u).map(([key, value]) => `${key}: ${formatErrors(value, depth + 1)}`).join("; ")
  }
  return Describe.describe(u)
}

const detailOf = (body: unknown): string | undefined => {
  if (typeof body === "string") return body.length > 500 ? `${body.slice(0, 500)}…` : body
  if (!isRecord(body)) return undefined
  if (typeof body.message === "string" && body.message !== "") return body.message
  if (typeof body.error === "string" && body.error !== "") return body.error
  if (body.errors !== undefined && body.errors !== null) return Describe.truncate(formatErrors(body.errors))
  return undefined
}

const NOT_FOUND_SINGLE =
  "the single-event endpoint needs Realtime server v2.97.0 or newer and this server answered 404: " +
  "upgrade the Realtime server (or the Supabase CLI), or send with sendBatch, which every server version supports"

// The fields of the `HttpBroadcastFailed` a non-2xx answer makes (`undefined` for a 2xx).
const responseFailure = (
  status: number,
  text: string,
  single: boolean
):
  | {
    readonly reason: HttpBroadcastFailed["reason"]
    readonly status: number
    readonly body?: unknown
    readonly detail: string
  }
  | undefined =>
{
  if (status >= 200 && status < 300) return undefined
  const body = parseBody(text)
  const reason = reasonOf(status)
  const detail = reason === "NotFound" && single
    ? NOT_FOUND_SINGLE
    : detailOf(body) ?? `the server answered ${status} without a message`
  return body === undefined ? { reason, status, detail } : { reason, status, body, detail }
}
