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
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Schedule from "effect/Schedule"
import { AccessToken } from "./AccessToken.js"
import * as Broadcast from "./core/http/broadcast.js"
import type * as CoreResult from "./core/result.js"
import { parseEndpoint } from "./internal/endpoint.js"
import type { AccessTokenError } from "./RealtimeError.js"
import { HttpBroadcastFailed, InvalidArgument } from "./RealtimeError.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("supabase-realtime-effect/HttpBroadcast")

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
export type Persist = Broadcast.Persist

/**
 * Options of one `send`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SendOptions extends Broadcast.SingleEventOptions {
  /** Overrides the layer's per-request timeout for this call. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * One message of a batch. `topic` with or without the `realtime:` prefix; `payload` a JSON object.
 *
 * @since 0.1.0
 * @category models
 */
export interface BatchMessage extends Broadcast.BatchMessage {}

/**
 * Options of one `sendBatch`.
 *
 * @since 0.1.0
 * @category models
 */
export interface BatchOptions {
  /** Overrides the layer's per-request timeout for this call. */
  readonly timeout?: Duration.DurationInput | undefined
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
 * @since 0.1.0
 * @category tags
 */
export const HttpBroadcast: Context.Tag<HttpBroadcast, HttpBroadcast> = Context.GenericTag<HttpBroadcast>(
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
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * Retries, off by default. The schedule is fed the `HttpBroadcastFailed` of each failed attempt
   * and applies only to `RateLimited` (429), `ServerError` (5xx) and `Transport` failures; other
   * statuses, timeouts (the server may have accepted the message), bad input and token errors fail
   * at once. A retry may deliver a message twice when the server accepted it but the answer was
   * lost. The token is read once per call, not per attempt.
   *
   * ```ts
   * HttpBroadcast.layer({ url, apiKey, retry: Schedule.exponential("200 millis").pipe(Schedule.intersect(Schedule.recurs(3))) })
   * ```
   */
  readonly retry?: Schedule.Schedule<unknown, HttpBroadcastFailed> | undefined
}

const DEFAULT_TIMEOUT = Duration.millis(Broadcast.DEFAULT_TIMEOUT_MILLIS)

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
    const endpoint = yield* parseEndpoint(options.url)
    const apiKey = Redacted.isRedacted(options.apiKey) ? options.apiKey : Redacted.make(options.apiKey)
    yield* invalidArgument(Broadcast.checkApiKey(Redacted.value(apiKey)))
    const defaultTimeout = yield* decodeTimeout(options.timeout, DEFAULT_TIMEOUT)
    const tokens = yield* AccessToken
    const client = (yield* HttpClient.HttpClient).pipe(
      // b3 / traceparent headers would make browsers preflight every request
      HttpClient.withTracerPropagation(false),
      // the client records request headers on its span: keep the apikey out of traces
      HttpClient.transformResponse(Effect.locallyWith(Headers.currentRedactedNames, Broadcast.redactApiKey))
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
          Effect.catchAll((error) => Effect.fail(transportError(error))),
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
        return retry === undefined
          ? attempt
          : Effect.retry(attempt, { schedule: retry, while: (error) => Broadcast.isRetryable(error.reason) })
      })

    const send = Effect.fn("HttpBroadcast.send")(function*(
      topic: string,
      event: string,
      payload: unknown,
      sendOptions?: SendOptions
    ) {
      const subtopic = yield* invalidArgument(Broadcast.checkTopic(topic))
      yield* invalidArgument(Broadcast.checkEvent(event))
      yield* Effect.annotateCurrentSpan({ topic: subtopic, event, private: sendOptions?.private === true })
      const timeout = yield* decodeTimeout(sendOptions?.timeout, defaultTimeout)
      const url = yield* invalidArgument(Broadcast.singleEventUrl(base, subtopic, event, sendOptions))
      const body = yield* invalidArgument(Broadcast.singleEventBody(subtopic, event, payload))
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
    ) {
      const timeout = yield* decodeTimeout(batchOptions?.timeout, defaultTimeout)
      const body = yield* invalidArgument(Broadcast.wireMessages(messages))
      yield* Effect.annotateCurrentSpan({
        messages: body.length,
        topics: Broadcast.distinct(body.map((m) => m.topic)),
        events: Broadcast.distinct(body.map((m) => m.event))
      })
      if (body.length === 0) return
      const json = yield* invalidArgument(Broadcast.batchBody(body))
      const request = HttpClientRequest.post(base).pipe(
        HttpClientRequest.acceptJson,
        HttpClientRequest.bodyText(json, "application/json")
      )
      return yield* execute(request, base, timeout, false)
    })

    return HttpBroadcast.of({ [TypeId]: TypeId, endpoint: base, send, sendBatch })
  })

/**
 * The service as a layer. Needs an `HttpClient` (`FetchHttpClient.layer`, `NodeHttpClient.layer`)
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
// internal: Effect wiring (the pure part is `core/http/broadcast.ts`)
// -----------------------------------------------------------------------------

// a check's detail as an `InvalidArgument`
const invalidArgument = <A>(result: CoreResult.Result<A, string>): Effect.Effect<A, InvalidArgument> =>
  result.ok ? Effect.succeed(result.value) : Effect.fail(new InvalidArgument({ detail: result.error }))

const decodeTimeout = (
  input: Duration.DurationInput | undefined,
  fallback: Duration.Duration
): Effect.Effect<Duration.Duration, InvalidArgument> => {
  if (input === undefined) return Effect.succeed(fallback)
  // Duration clamps negative and NaN numbers to zero: refuse them here, and zero with them
  const decoded = typeof input === "number" && !(input > 0) ? Option.none() : Duration.decodeUnknown(input)
  return Option.isSome(decoded) && !Duration.isZero(decoded.value)
    ? Effect.succeed(decoded.value)
    : Effect.fail(new InvalidArgument({ detail: Broadcast.invalidTimeout(input) }))
}

const withTimeout =
  (timeout: Duration.Duration, url: string) =>
  <A>(effect: Effect.Effect<A, HttpBroadcastFailed>): Effect.Effect<A, HttpBroadcastFailed> =>
    Duration.isFinite(timeout)
      ? Effect.timeoutFail(effect, {
        duration: timeout,
        onTimeout: () =>
          new HttpBroadcastFailed({
            reason: "Timeout",
            detail: Broadcast.timeoutDetail(url, Duration.toMillis(timeout))
          })
      })
      : effect

const transportError = (error: HttpClientError.HttpClientError): HttpBroadcastFailed =>
  new HttpBroadcastFailed({ reason: "Transport", detail: Broadcast.transportDetail(error.message, error.cause) })

const handleResponse = (
  response: HttpClientResponse.HttpClientResponse,
  single: boolean
): Effect.Effect<number, HttpBroadcastFailed> =>
  response.text.pipe(
    Effect.orElseSucceed(() => ""),
    Effect.flatMap((text) => {
      const failure = Broadcast.responseFailure(response.status, text, single)
      return failure === undefined ? Effect.succeed(response.status) : Effect.fail(new HttpBroadcastFailed(failure))
    })
  )
