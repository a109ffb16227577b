import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/TestClock"
import * as AccessToken from "../src/AccessToken.js"
import * as HttpBroadcast from "../src/HttpBroadcast.js"
import { HttpBroadcastFailed, InvalidArgument } from "../src/RealtimeError.js"
import { settle } from "./support/turns.js"

const API_KEY = "anon-key-secret"
const PROJECT = "https://abc.supabase.co"
const BASE = "https://abc.supabase.co/realtime/v1/api/broadcast"

// -----------------------------------------------------------------------------
// fake HttpClient
// -----------------------------------------------------------------------------

type Answer =
  | { readonly status: number; readonly body?: string; readonly contentType?: string }
  | { readonly transport: string }
  | "never"

interface Recorded {
  readonly method: string
  readonly url: string
  readonly headers: Record<string, string>
  readonly body: Uint8Array | undefined
  readonly bodyContentType: string | undefined
  readonly signal: AbortSignal
  readonly redactedNames: ReadonlyArray<string | RegExp>
  readonly tracerPropagation: boolean
  /** attributes of the HttpClient's own span (request headers as recorded for traces) */
  readonly clientSpan: Record<string, unknown> | undefined
  /** name and attributes of our span, the parent of the client's span */
  readonly parentSpan: { readonly name: string; readonly attributes: Record<string, unknown> } | undefined
}

const spanAttributes = (span: unknown): Record<string, unknown> | undefined =>
  span !== null && typeof span === "object" && "attributes" in span && span.attributes instanceof Map
    ? Object.fromEntries(span.attributes)
    : undefined

const makeFake = (answers: ReadonlyArray<Answer>) => {
  const requests: Array<Recorded> = []
  const client = HttpClient.make((request, url, signal, fiber) =>
    Effect.flatMap(Effect.option(Effect.currentSpan), (span) => {
      const parent = Option.flatMap(span, (s) => s.parent)
      requests.push({
        method: request.method,
        url: url.toString(),
        headers: { ...request.headers },
        body: request.body._tag === "Uint8Array" ? request.body.body : undefined,
        bodyContentType: request.body._tag === "Uint8Array" ? request.body.contentType : undefined,
        signal,
        redactedNames: fiber.getFiberRef(Headers.currentRedactedNames),
        tracerPropagation: fiber.getFiberRef(HttpClient.currentTracerPropagation),
        clientSpan: Option.isSome(span) ? spanAttributes(span.value) : undefined,
        parentSpan: Option.isSome(parent) && parent.value._tag === "Span"
          ? { name: parent.value.name, attributes: spanAttributes(parent.value) ?? {} }
          : undefined
      })
      const answer = answers[requests.length - 1] ?? answers[answers.length - 1] ?? { status: 202 }
      if (answer === "never") return Effect.never
      if ("transport" in answer) {
        return Effect.fail(
          new HttpClientError.RequestError({ request, reason: "Transport", cause: new Error(answer.transport) })
        )
      }
      const headers: Record<string, string> = answer.contentType === undefined
        ? {}
        : { "content-type": answer.contentType }
      return Effect.succeed(
        HttpClientResponse.fromWeb(request, new Response(answer.body ?? null, { status: answer.status, headers }))
      )
    })
  )
  return { requests, layer: Layer.succeed(HttpClient.HttpClient, client) }
}

const json = (status: number, body: unknown): Answer => ({
  status,
  body: JSON.stringify(body),
  contentType: "application/json; charset=utf-8"
})

const decodeText = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes)

const setup = (
  answers: ReadonlyArray<Answer> = [{ status: 202 }],
  options: {
    readonly url?: string
    readonly tokens?: Layer.Layer<AccessToken.AccessToken>
    readonly timeout?: HttpBroadcast.Options["timeout"]
    readonly retry?: HttpBroadcast.Options["retry"]
  } = {}
) => {
  const fake = makeFake(answers)
  const layer = HttpBroadcast.layer({
    url: options.url ?? PROJECT,
    apiKey: Redacted.make(API_KEY),
    timeout: options.timeout,
    retry: options.retry
  }).pipe(
    Layer.provide(fake.layer),
    Layer.provide(options.tokens ?? AccessToken.layerNone)
  )
  return {
    requests: fake.requests,
    run: <A, E>(f: (http: HttpBroadcast.HttpBroadcast) => Effect.Effect<A, E>) =>
      Effect.flatMap(HttpBroadcast.HttpBroadcast, f).pipe(Effect.provide(layer))
  }
}

const jsonHeaders = (bearer: string, length: number) => ({
  apikey: API_KEY,
  authorization: `Bearer ${bearer}`,
  accept: "application/json",
  "content-type": "application/json",
  "content-length": String(length)
})

const failure = <A, E>(effect: Effect.Effect<A, E>) => Effect.flip(effect).pipe(Effect.map((error) => error as unknown))

// -----------------------------------------------------------------------------
// tests
// -----------------------------------------------------------------------------

describe("HttpBroadcast.send (single-event endpoint)", () => {
  it.effect("POSTs the JSON payload to /api/broadcast/<subtopic>/events/<event> with apikey and Bearer headers", () =>
    Effect.gen(function*() {
      const { requests, run } = setup()
      yield* run((http) => http.send("realtime:room:1", "cursor move", { x: 1, y: 2 }))
      assert.strictEqual(requests.length, 1)
      const [request] = requests
      const body = JSON.stringify({ x: 1, y: 2 })
      assert.strictEqual(request!.method, "POST")
      assert.strictEqual(request!.url, `${BASE}/room%3A1/events/cursor%20move`)
      // exact header set: no apikey in the URL, no b3 / traceparent (tracer propagation off)
      assert.deepStrictEqual(request!.headers, jsonHeaders(API_KEY, body.length))
      assert.strictEqual(request!.bodyContentType, "application/json")
      assert.strictEqual(decodeText(request!.body), body)
      assert.isFalse(request!.tracerPropagation)
      assert.notInclude(request!.url, API_KEY)
    }))

  it.effect("accepts the topic without the realtime: prefix and encodes topic and event", () =>
    Effect.gen(function*() {
      const { requests, run } = setup()
      yield* run((http) => http.send("a/b?c#d", "ev/ent&x", "hello"))
      assert.strictEqual(requests[0]!.url, `${BASE}/a%2Fb%3Fc%23d/events/ev%2Fent%26x`)
      assert.strictEqual(decodeText(requests[0]!.body), "\"hello\"")
    }))

  it.effect("dots that are not a whole segment, and encoded dots, stay in their segment", () =>
    Effect.gen(function*() {
      const { requests, run } = setup()
      yield* run((http) => http.send("...", ".e", {}))
      yield* run((http) => http.send("%2e%2e", "%2E", {}))
      assert.deepStrictEqual(requests.map((r) => r.url), [
        `${BASE}/.../events/.e`,
        `${BASE}/%252e%252e/events/%252E`
      ])
    }))

  it.effect("sends any JSON value except null / undefined", () =>
    Effect.gen(function*() {
      const { requests, run } = setup()
      yield* run((http) =>
        Effect.all([
          http.send("room", "n", 0),
          http.send("room", "f", false),
          http.send("room", "a", [1, "two", null]),
          http.send("room", "s", "")
        ])
      )
      assert.deepStrictEqual(requests.map((r) => decodeText(r.body)), ["0", "false", "[1,\"two\",null]", "\"\""])
      assert.isTrue(requests.every((r) => r.headers["content-type"] === "application/json"))
    }))

  it.effect("private and persist as query parameters, as realtime-js sends them", () =>
    Effect.gen(function*() {
      const { requests, run } = setup()
      yield* run((http) =>
        Effect.all([
          http.send("room", "e", {}, { private: true }),
          http.send("room", "e", {}, { private: false, persist: false }),
          http.send("room", "e", {}, { private: true, persist: true }),
          http.send("room", "e", {}, { private: true, persist: { ttl: 60 } }),
          http.send("room", "e", {}, { persist: { ttl: 5 } })
        ])
      )
      assert.deepStrictEqual(requests.map((r) => r.url), [
        `${BASE}/room/events/e?private=true`,
        `${BASE}/room/events/e`,
        `${BASE}/room/events/e?private=true&persist=true`,
        `${BASE}/room/events/e?private=true&persist%5Bttl%5D=60`,
        `${BASE}/room/events/e?persist%5Bttl%5D=5`
      ])
    }))

  it.effect("sends Uint8Array, ArrayBuffer and other views as raw application/octet-stream bytes", () =>
    Effect.gen(function*() {
      const { requests, run } = setup()
      const backing = new Uint8Array([9, 9, 1, 2, 3, 9])
      yield* run((http) =>
        Effect.all([
          http.send("room", "bin", new Uint8Array([0, 1, 254, 255])),
          http.send("room", "bin", new Uint8Array([7, 8]).buffer),
          http.send("room", "bin", backing.subarray(2, 5)),
          http.send("room", "bin", new DataView(backing.buffer, 1, 2))
        ])
      )
      assert.deepStrictEqual(requests.map((r) => Array.from(r.body!)), [[0, 1, 254, 255], [7, 8], [1, 2, 3], [9, 1]])
      for (const request of requests) {
        assert.strictEqual(request.headers["content-type"], "application/octet-stream")
        assert.strictEqual(request.bodyContentType, "application/octet-stream")
        assert.strictEqual(request.headers["content-length"], String(request.body!.length))
        assert.strictEqual(request.headers.apikey, API_KEY)
        assert.strictEqual(request.headers.accept, "application/json")
      }
    }))

  it.effect("any 2xx succeeds", () =>
    Effect.gen(function*() {
      const { requests, run } = setup([{ status: 202 }, { status: 200, body: "{}" }, { status: 204 }])
      yield* run((http) => Effect.all([http.send("r", "e", {}), http.send("r", "e", {}), http.send("r", "e", {})]))
      assert.strictEqual(requests.length, 3)
    }))

  it.effect("the service carries its TypeId and its endpoint", () =>
    Effect.gen(function*() {
      const { run } = setup()
      const http = yield* run((http) => Effect.succeed(http))
      assert.strictEqual(http[HttpBroadcast.TypeId], HttpBroadcast.TypeId)
      // the same id as the Effect 4 edition's: one symbol in the global registry
      assert.strictEqual(HttpBroadcast.TypeId, Symbol.for("supabase-realtime-effect/HttpBroadcast"))
      assert.strictEqual(http.endpoint, BASE)
    }))
})

describe("HttpBroadcast.sendBatch (batch endpoint)", () => {
  it.effect("POSTs {messages:[...]} to /api/broadcast with subtopics, private flags and ids", () =>
    Effect.gen(function*() {
      const { requests, run } = setup()
      yield* run((http) =>
        http.sendBatch([
          { topic: "realtime:room:1", event: "cursor", payload: { x: 1 } },
          { topic: "room:2", event: "chat", payload: { text: "hi", nested: { a: [1] } }, private: true },
          { topic: "room:3", event: "e", payload: {}, private: false, id: "1b4e28ba-2fa1-11d2-883f-0016d3cca427" }
        ])
      )
      assert.strictEqual(requests.length, 1)
      const [request] = requests
      const body = decodeText(request!.body)
      assert.strictEqual(request!.method, "POST")
      assert.strictEqual(request!.url, BASE)
      assert.deepStrictEqual(request!.headers, jsonHeaders(API_KEY, new TextEncoder().encode(body).length))
      assert.deepStrictEqual(JSON.parse(body), {
        messages: [
          { topic: "room:1", event: "cursor", payload: { x: 1 }, private: false },
          { topic: "room:2", event: "chat", payload: { text: "hi", nested: { a: [1] } }, private: true },
          {
            topic: "room:3",
            event: "e",
            payload: {},
            private: false,
            id: "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
          }
        ]
      })
      // key order on the wire as realtime-js: topic, event, payload, private
      assert.isTrue(
        body.startsWith(
          "{\"messages\":[{\"topic\":\"room:1\",\"event\":\"cursor\",\"payload\":{\"x\":1},\"private\":false}"
        )
      )
    }))

  it.effect("an empty batch sends nothing", () =>
    Effect.gen(function*() {
      const { requests, run } = setup()
      yield* run((http) => http.sendBatch([]))
      assert.strictEqual(requests.length, 0)
    }))

  it.effect("accepts any iterable of messages", () =>
    Effect.gen(function*() {
      const { requests, run } = setup()
      const messages = new Set([{ topic: "t", event: "e", payload: { n: 1 } }])
      yield* run((http) => http.sendBatch(messages))
      assert.deepStrictEqual(JSON.parse(decodeText(requests[0]!.body)).messages, [
        { topic: "t", event: "e", payload: { n: 1 }, private: false }
      ])
    }))
})

describe("authorization", () => {
  it.effect("Bearer <token> from the token source, apikey header unchanged", () =>
    Effect.gen(function*() {
      const { requests, run } = setup([{ status: 202 }], { tokens: AccessToken.layerStatic("user-jwt") })
      yield* run((http) =>
        Effect.all([http.send("r", "e", { a: 1 }), http.sendBatch([{ topic: "r", event: "e", payload: {} }])])
      )
      assert.deepStrictEqual(requests.map((r) => r.headers.authorization), ["Bearer user-jwt", "Bearer user-jwt"])
      assert.deepStrictEqual(requests.map((r) => r.headers.apikey), [API_KEY, API_KEY])
    }))

  it.effect("Bearer <apikey> when there is no token", () =>
    Effect.gen(function*() {
      const { requests, run } = setup()
      yield* run((http) => http.send("r", "e", { a: 1 }))
      assert.strictEqual(requests[0]!.headers.authorization, `Bearer ${API_KEY}`)
    }))

  it.effect("a token refreshed by the source between two sends is picked up", () =>
    Effect.gen(function*() {
      const counter = yield* Ref.make(0)
      const fetch = Ref.updateAndGet(counter, (n) => n + 1).pipe(Effect.map((n) => `jwt-${n}`))
      const { requests, run } = setup([{ status: 202 }], { tokens: AccessToken.layerEffect(fetch) })
      yield* run((http) =>
        Effect.gen(function*() {
          yield* http.send("r", "e", { a: 1 })
          yield* http.sendBatch([{ topic: "r", event: "e", payload: {} }])
        })
      )
      assert.deepStrictEqual(requests.map((r) => r.headers.authorization), ["Bearer jwt-1", "Bearer jwt-2"])
    }))

  it.effect("a token set by hand between two sends is picked up, and clearing it falls back to the apikey", () =>
    Effect.gen(function*() {
      const fake = makeFake([{ status: 202 }])
      const tokens = yield* AccessToken.make<never, never>({ initial: "first" })
      const http = yield* HttpBroadcast.make({ url: PROJECT, apiKey: API_KEY }).pipe(
        Effect.provide(fake.layer),
        Effect.provideService(AccessToken.AccessToken, tokens)
      )
      yield* http.send("r", "e", {})
      yield* tokens.set("second")
      yield* http.send("r", "e", {})
      yield* tokens.set(null)
      yield* http.send("r", "e", {})
      assert.deepStrictEqual(fake.requests.map((r) => r.headers.authorization), [
        "Bearer first",
        "Bearer second",
        `Bearer ${API_KEY}`
      ])
    }))

  it.effect("a failing token source fails the send with AccessTokenError and makes no request", () =>
    Effect.gen(function*() {
      const { requests, run } = setup([{ status: 202 }], {
        tokens: AccessToken.layerEffect(Effect.fail("auth down"))
      })
      const error = yield* failure(run((http) => http.send("r", "e", {})))
      assert.strictEqual((error as { _tag: string })._tag, "AccessTokenError")
      assert.strictEqual(requests.length, 0)
    }))

  it.effect("keeps the apikey out of traces: redacted in the client span, propagation headers off", () =>
    Effect.gen(function*() {
      const { requests, run } = setup([{ status: 202 }], { tokens: AccessToken.layerStatic("user-jwt") })
      yield* run((http) => http.send("realtime:room", "cursor", { x: 1 }, { private: true }))
      const [request] = requests
      assert.include(request!.redactedNames, "apikey")
      assert.include(request!.redactedNames, "authorization")
      assert.strictEqual(request!.clientSpan?.["http.request.header.apikey"], "<redacted>")
      assert.strictEqual(request!.clientSpan?.["http.request.header.authorization"], "<redacted>")
      assert.isUndefined(request!.headers.traceparent)
      assert.isUndefined(request!.headers.b3)
      assert.strictEqual(request!.parentSpan?.name, "HttpBroadcast.send")
      assert.deepInclude(request!.parentSpan?.attributes, { topic: "room", event: "cursor", private: true })
    }))

  it.effect("sendBatch runs in its own span", () =>
    Effect.gen(function*() {
      const { requests, run } = setup()
      yield* run((http) =>
        http.sendBatch([{ topic: "a", event: "x", payload: {} }, { topic: "b", event: "x", payload: {} }])
      )
      assert.strictEqual(requests[0]!.parentSpan?.name, "HttpBroadcast.sendBatch")
      assert.deepInclude(requests[0]!.parentSpan?.attributes, { messages: 2, topics: "a,b", events: "x" })
    }))
})

describe("responses", () => {
  const cases: ReadonlyArray<{
    readonly name: string
    readonly answer: Answer
    readonly reason: HttpBroadcastFailed["reason"]
    readonly body: unknown
    readonly detail: string
  }> = [
    {
      name: "401 Unauthorized (bad JWT)",
      answer: json(401, { message: "Unauthorized" }),
      reason: "Unauthorized",
      body: { message: "Unauthorized" },
      detail: "Unauthorized"
    },
    {
      name: "401 unknown tenant",
      answer: json(401, { message: "Tenant not found in database" }),
      reason: "Unauthorized",
      body: { message: "Tenant not found in database" },
      detail: "Tenant not found in database"
    },
    {
      name: "403 suspended tenant",
      answer: json(403, { message: "Tenant is suspended" }),
      reason: "Forbidden",
      body: { message: "Tenant is suspended" },
      detail: "Tenant is suspended"
    },
    {
      name: "403 private without RLS write permission",
      answer: json(403, { message: "Unauthorized" }),
      reason: "Forbidden",
      body: { message: "Unauthorized" },
      detail: "Unauthorized"
    },
    {
      name: "413 payload too large (proxy, text body)",
      answer: { status: 413, body: "Request Entity Too Large", contentType: "text/plain" },
      reason: "PayloadTooLarge",
      body: "Request Entity Too Large",
      detail: "Request Entity Too Large"
    },
    {
      name: "415 unsupported media type",
      answer: json(415, { error: "Unsupported Media Type. Use application/json or application/octet-stream" }),
      reason: "UnsupportedMediaType",
      body: { error: "Unsupported Media Type. Use application/json or application/octet-stream" },
      detail: "Unsupported Media Type. Use application/json or application/octet-stream"
    },
    {
      name: "422 changeset: payload size",
      answer: json(422, { errors: { payload: ["Payload size exceeds tenant limit"] } }),
      reason: "Invalid",
      body: { errors: { payload: ["Payload size exceeds tenant limit"] } },
      detail: "payload: Payload size exceeds tenant limit"
    },
    {
      name: "422 changeset: several fields",
      answer: json(422, { errors: { payload: ["can't be blank"], topic: ["can't be blank", "is invalid"] } }),
      reason: "Invalid",
      body: { errors: { payload: ["can't be blank"], topic: ["can't be blank", "is invalid"] } },
      detail: "payload: can't be blank; topic: can't be blank, is invalid"
    },
    {
      name: "422 RLS policy error",
      answer: json(422, { message: "RLS policy error" }),
      reason: "Invalid",
      body: { message: "RLS policy error" },
      detail: "RLS policy error"
    },
    {
      name: "422 tenant database unavailable",
      answer: json(422, { message: "Tenant database unavailable" }),
      reason: "Invalid",
      body: { message: "Tenant database unavailable" },
      detail: "Tenant database unavailable"
    },
    {
      name: "429 plug",
      answer: json(429, { message: "Too many requests" }),
      reason: "RateLimited",
      body: { message: "Too many requests" },
      detail: "Too many requests"
    },
    {
      name: "429 tenant rate limit",
      answer: json(429, { message: "You have exceeded your rate limit" }),
      reason: "RateLimited",
      body: { message: "You have exceeded your rate limit" },
      detail: "You have exceeded your rate limit"
    },
    {
      name: "429 batch too big",
      answer: json(429, { message: "Too many messages to broadcast, please reduce the batch size" }),
      reason: "RateLimited",
      body: { message: "Too many messages to broadcast, please reduce the batch size" },
      detail: "Too many messages to broadcast, please reduce the batch size"
    },
    {
      name: "429 pool exhausted",
      answer: json(429, { message: "Connection pool exhausted" }),
      reason: "RateLimited",
      body: { message: "Connection pool exhausted" },
      detail: "Connection pool exhausted"
    },
    {
      name: "500 RPC error",
      answer: json(500, { message: "RPC error" }),
      reason: "ServerError",
      body: { message: "RPC error" },
      detail: "RPC error"
    },
    {
      name: "500 unable to authorize",
      answer: json(500, { message: "Unable to authorize broadcast" }),
      reason: "ServerError",
      body: { message: "Unable to authorize broadcast" },
      detail: "Unable to authorize broadcast"
    },
    {
      name: "503 without body",
      answer: { status: 503 },
      reason: "ServerError",
      body: undefined,
      detail: "the server answered 503 without a message"
    },
    {
      name: "400 unexpected",
      answer: json(400, { errors: { detail: "Bad Request" } }),
      reason: "UnexpectedStatus",
      body: { errors: { detail: "Bad Request" } },
      detail: "detail: Bad Request"
    },
    {
      name: "302 unexpected",
      answer: { status: 302 },
      reason: "UnexpectedStatus",
      body: undefined,
      detail: "the server answered 302 without a message"
    }
  ]

  it.effect.each(cases)(
    "$name → $reason (send and sendBatch)",
    ({ answer, body, detail, reason }) =>
      Effect.gen(function*() {
        const { requests, run } = setup([answer])
        const single = yield* failure(run((http) => http.send("room", "e", { a: 1 })))
        const batch = yield* failure(run((http) => http.sendBatch([{ topic: "room", event: "e", payload: { a: 1 } }])))
        const status = "status" in (answer as object) ? (answer as { status: number }).status : undefined
        for (const error of [single, batch]) {
          assert.instanceOf(error, HttpBroadcastFailed)
          const e = error as HttpBroadcastFailed
          assert.strictEqual(e.reason, reason)
          assert.strictEqual(e.status, status)
          assert.deepStrictEqual(e.body, body)
          assert.strictEqual(e.detail, detail)
          assert.include(e.message, String(status))
        }
        assert.strictEqual(requests.length, 2)
      })
  )

  it.effect("a deeply nested error body is described bounded, never a crash", () =>
    Effect.gen(function*() {
      // a body nested deeper than JSON.stringify can go (the server chooses it)
      const depth = 100_000
      const body = `{"errors":${"{\"a\":".repeat(depth)}"bottom"${"}".repeat(depth)}}`
      const { run } = setup([{ status: 422, body, contentType: "application/json" }])
      const error = (yield* failure(run((http) => http.send("room", "e", {})))) as HttpBroadcastFailed
      assert.strictEqual(error.reason, "Invalid")
      assert.isBelow(error.detail.length, 2_000)
    }))

  it.effect("404 on the single endpoint says the server needs v2.97.0; on the batch endpoint it does not", () =>
    Effect.gen(function*() {
      const notFound = json(404, { errors: { detail: "Not Found" } })
      const { run } = setup([notFound])
      const single = (yield* failure(run((http) => http.send("room", "e", {})))) as HttpBroadcastFailed
      assert.strictEqual(single.reason, "NotFound")
      assert.strictEqual(single.status, 404)
      assert.deepStrictEqual(single.body, { errors: { detail: "Not Found" } })
      assert.include(single.detail, "v2.97.0")
      assert.include(single.detail, "sendBatch")
      const batch = (yield* failure(run((http) =>
        http.sendBatch([{ topic: "room", event: "e", payload: {} }])
      ))) as HttpBroadcastFailed
      assert.strictEqual(batch.reason, "NotFound")
      assert.strictEqual(batch.detail, "detail: Not Found")
    }))

  it.effect("a transport error → Transport, without status", () =>
    Effect.gen(function*() {
      const { requests, run } = setup([{ transport: "connect ECONNREFUSED 127.0.0.1:4000" }])
      const error = (yield* failure(run((http) => http.send("room", "e", {})))) as HttpBroadcastFailed
      assert.instanceOf(error, HttpBroadcastFailed)
      assert.strictEqual(error.reason, "Transport")
      assert.isUndefined(error.status)
      assert.include(error.detail, "ECONNREFUSED")
      assert.notInclude(error.detail, API_KEY)
      assert.strictEqual(requests.length, 1)
    }))

  it.effect("no response within the default 10 s → Timeout, and the request is aborted", () =>
    Effect.gen(function*() {
      const { requests, run } = setup(["never"])
      const fiber = yield* run((http) => http.send("room", "e", {})).pipe(Effect.fork)
      yield* TestClock.adjust("9999 millis")
      assert.isNull(fiber.unsafePoll())
      yield* TestClock.adjust("1 millis")
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      const error = (yield* failure(exit)) as HttpBroadcastFailed
      assert.strictEqual(error.reason, "Timeout")
      assert.isUndefined(error.status)
      assert.include(error.detail, "10000 ms")
      assert.isTrue(requests[0]!.signal.aborted)
    }))

  it.effect("the layer's timeout and the per-call timeout", () =>
    Effect.gen(function*() {
      const { run } = setup(["never"], { timeout: "3 seconds" })
      const layerTimeout = yield* run((http) => http.sendBatch([{ topic: "r", event: "e", payload: {} }])).pipe(
        Effect.fork
      )
      const callTimeout = yield* run((http) => http.send("r", "e", {}, { timeout: "1 second" })).pipe(Effect.fork)
      yield* TestClock.adjust("1 second")
      assert.isNull(layerTimeout.unsafePoll())
      const first = (yield* failure(Fiber.join(callTimeout))) as HttpBroadcastFailed
      assert.strictEqual(first.reason, "Timeout")
      yield* TestClock.adjust("2 seconds")
      const second = (yield* failure(Fiber.join(layerTimeout))) as HttpBroadcastFailed
      assert.strictEqual(second.reason, "Timeout")
      assert.include(second.detail, "3000 ms")
    }))
})

describe("retry", () => {
  it.effect("no retries by default", () =>
    Effect.gen(function*() {
      const { requests, run } = setup([json(503, { message: "down" }), { status: 202 }])
      const error = (yield* failure(run((http) => http.send("r", "e", {})))) as HttpBroadcastFailed
      assert.strictEqual(error.reason, "ServerError")
      assert.strictEqual(requests.length, 1)
    }))

  it.effect("the retry schedule applies to 429, 5xx and transport errors, at the schedule's pace", () =>
    Effect.gen(function*() {
      const { requests, run } = setup(
        [json(429, { message: "Too many requests" }), json(500, { message: "RPC error" }), {
          transport: "socket hang up"
        }, { status: 202 }],
        { retry: Schedule.spaced("1 second").pipe(Schedule.intersect(Schedule.recurs(5))) }
      )
      const fiber = yield* run((http) => http.send("r", "e", { a: 1 })).pipe(Effect.fork)
      yield* settle
      assert.strictEqual(requests.length, 1)
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.strictEqual(requests.length, 2)
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.strictEqual(requests.length, 3)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      assert.strictEqual(requests.length, 4)
      assert.isTrue(requests.every((r) => decodeText(r.body) === "{\"a\":1}"))
    }))

  it.effect("the retry schedule gives up with the last error", () =>
    Effect.gen(function*() {
      const { requests, run } = setup([json(503, { message: "down" })], { retry: Schedule.recurs(2) })
      const error = (yield* failure(run((http) =>
        http.sendBatch([{ topic: "r", event: "e", payload: {} }])
      ))) as HttpBroadcastFailed
      assert.strictEqual(error.reason, "ServerError")
      assert.strictEqual(requests.length, 3)
    }))

  it.effect("4xx other than 429 and timeouts are not retried", () =>
    Effect.gen(function*() {
      for (const answer of [json(401, { message: "Unauthorized" }), json(422, { message: "RLS policy error" })]) {
        const { requests, run } = setup([answer, { status: 202 }], { retry: Schedule.recurs(3) })
        yield* failure(run((http) => http.send("r", "e", {})))
        assert.strictEqual(requests.length, 1)
      }
      const { requests, run } = setup(["never", { status: 202 }], { retry: Schedule.recurs(3), timeout: "1 second" })
      const fiber = yield* run((http) => http.send("r", "e", {})).pipe(Effect.fork)
      yield* TestClock.adjust("1 second")
      const error = (yield* failure(Fiber.join(fiber))) as HttpBroadcastFailed
      assert.strictEqual(error.reason, "Timeout")
      assert.strictEqual(requests.length, 1)
    }))
})

describe("invalid arguments make no request", () => {
  const circular: Record<string, unknown> = {}
  circular.self = circular
  const sends: ReadonlyArray<readonly [string, (http: HttpBroadcast.HttpBroadcast) => Effect.Effect<void, unknown>]> = [
    ["null payload", (http) => http.send("r", "e", null)],
    ["undefined payload", (http) => http.send("r", "e", undefined)],
    ["function payload", (http) => http.send("r", "e", () => 1)],
    ["bigint payload", (http) => http.send("r", "e", { n: 1n })],
    ["circular payload", (http) => http.send("r", "e", circular)],
    ["empty topic", (http) => http.send("", "e", {})],
    ["bare prefix topic", (http) => http.send("realtime:", "e", {})],
    ["empty event", (http) => http.send("r", "", {})],
    // dot segments: the URL parser would resolve them and send the key and token to another path
    ["topic '.'", (http) => http.send(".", "e", {})],
    ["topic '..'", (http) => http.send("..", "e", {})],
    ["topic 'realtime:..'", (http) => http.send("realtime:..", "e", {})],
    ["event '.'", (http) => http.send("r", ".", {})],
    ["event '..'", (http) => http.send("r", "..", new Uint8Array([1]))],
    ["persist ttl 0", (http) => http.send("r", "e", {}, { persist: { ttl: 0 } })],
    ["persist ttl fraction", (http) => http.send("r", "e", {}, { persist: { ttl: 1.5 } })],
    ["negative timeout", (http) => http.send("r", "e", {}, { timeout: -1 })],
    ["zero timeout", (http) => http.send("r", "e", {}, { timeout: "0 millis" })],
    ["NaN timeout", (http) => http.sendBatch([{ topic: "r", event: "e", payload: {} }], { timeout: Number.NaN })],
    ["batch: array payload", (http) => http.sendBatch([{ topic: "r", event: "e", payload: [1] }])],
    ["batch: null payload", (http) => http.sendBatch([{ topic: "r", event: "e", payload: null }])],
    ["batch: string payload", (http) => http.sendBatch([{ topic: "r", event: "e", payload: "x" }])],
    ["batch: bytes payload", (http) => http.sendBatch([{ topic: "r", event: "e", payload: new Uint8Array([1]) }])],
    ["batch: bigint in payload", (http) => http.sendBatch([{ topic: "r", event: "e", payload: { n: 1n } }])],
    ["batch: empty topic", (http) => http.sendBatch([{ topic: "realtime:", event: "e", payload: {} }])],
    ["batch: empty event", (http) => http.sendBatch([{ topic: "r", event: "", payload: {} }])],
    ["batch: empty id", (http) => http.sendBatch([{ topic: "r", event: "e", payload: {}, id: "" }])],
    [
      "batch: one bad message among good ones",
      (http) =>
        http.sendBatch([
          { topic: "r", event: "e", payload: {} },
          { topic: "r", event: "e", payload: 1 }
        ])
    ]
  ]

  it.effect.each(sends)("%s", ([, f]) =>
    Effect.gen(function*() {
      const { requests, run } = setup()
      const error = yield* failure(run(f))
      assert.instanceOf(error, InvalidArgument)
      assert.strictEqual(requests.length, 0)
    }))

  it.effect("dot segments are refused with a message that says why", () =>
    Effect.gen(function*() {
      const { run } = setup()
      const error = (yield* failure(run((http) => http.send("realtime:..", "e", {})))) as InvalidArgument
      assert.strictEqual(
        error.detail,
        "HttpBroadcast.send: the topic '..' cannot be a URL path segment (use sendBatch, or another topic)"
      )
      // the batch endpoint carries the topic in the body: a dot topic is fine there
      const { requests, run: runBatch } = setup()
      yield* runBatch((http) => http.sendBatch([{ topic: "..", event: ".", payload: {} }]))
      assert.deepStrictEqual(JSON.parse(decodeText(requests[0]!.body)).messages[0], {
        topic: "..",
        event: ".",
        payload: {},
        private: false
      })
    }))

  it.effect("the batch error names the message", () =>
    Effect.gen(function*() {
      const { run } = setup()
      const error = (yield* failure(run((http) =>
        http.sendBatch([{ topic: "r", event: "ok", payload: {} }, {
          topic: "realtime:room",
          event: "bad",
          payload: []
        }])
      ))) as InvalidArgument
      assert.include(error.detail, "message 1")
      assert.include(error.detail, "'bad' on 'room'")
      assert.include(error.detail, "JSON object")
    }))

  it.effect.each(
    [
      ["apikey in the query string", "https://abc.supabase.co/realtime/v1?apikey=anon-key-secret", API_KEY],
      ["unsupported scheme", "ftp://abc.supabase.co", API_KEY],
      ["not a URL", "abc.supabase.co", API_KEY],
      ["empty apikey", PROJECT, ""],
      ["blank apikey", PROJECT, " \t"],
      ["a malformed URL holding the key", `https://abc.supabase.co ${API_KEY}`, API_KEY],
      ["credentials in the URL", `https://anon:${API_KEY}@abc.supabase.co`, API_KEY]
    ] as const
  )("layer: %s → InvalidArgument", ([, url, apiKey]) =>
    Effect.gen(function*() {
      const fake = makeFake([{ status: 202 }])
      const error = yield* HttpBroadcast.make({ url, apiKey }).pipe(
        Effect.provide(fake.layer),
        Effect.provide(AccessToken.layerNone),
        Effect.flip
      )
      assert.instanceOf(error, InvalidArgument)
      assert.notInclude(error.detail, API_KEY)
    }))

  it.effect("layer: invalid timeout → InvalidArgument", () =>
    Effect.gen(function*() {
      const fake = makeFake([{ status: 202 }])
      const error = yield* HttpBroadcast.make({ url: PROJECT, apiKey: API_KEY, timeout: -5 }).pipe(
        Effect.provide(fake.layer),
        Effect.provide(AccessToken.layerNone),
        Effect.flip
      )
      assert.instanceOf(error, InvalidArgument)
    }))
})

describe("URL forms", () => {
  it.effect.each(
    [
      ["project URL", "https://abc.supabase.co", BASE],
      ["project URL with trailing slash", "https://abc.supabase.co/", BASE],
      ["wss endpoint", "wss://abc.supabase.co/realtime/v1", BASE],
      ["wss endpoint with /websocket", "wss://abc.supabase.co/realtime/v1/websocket", BASE],
      ["self-hosted ws://host:4000/socket", "ws://localhost:4000/socket", "http://localhost:4000/api/broadcast"],
      [
        "self-hosted ws://host:4000/socket/websocket",
        "ws://127.0.0.1:4000/socket/websocket",
        "http://127.0.0.1:4000/api/broadcast"
      ]
    ] as const
  )("%s", ([, url, base]) =>
    Effect.gen(function*() {
      const { requests, run } = setup([{ status: 202 }], { url })
      const endpoint = yield* run((http) =>
        Effect.as(
          Effect.all([
            http.send("realtime:room", "e", {}),
            http.sendBatch([{ topic: "room", event: "e", payload: {} }])
          ]),
          http.endpoint
        )
      )
      assert.strictEqual(endpoint, base)
      assert.deepStrictEqual(requests.map((r) => r.url), [`${base}/room/events/e`, base])
    }))
})

describe("logging", () => {
  it.effect("logs method, url and status at debug level, never the apikey or the token", () =>
    Effect.gen(function*() {
      const logs: Array<{ level: string; message: string; annotations: Record<string, unknown> }> = []
      const capture = Logger.make(({ annotations, logLevel, message }) => {
        const record: Record<string, unknown> = {}
        for (const [key, value] of annotations) record[key] = value
        logs.push({ level: logLevel.label, message: String(message), annotations: record })
      })
      const { run } = setup([{ status: 202 }, json(401, { message: "Unauthorized" })], {
        tokens: AccessToken.layerStatic("user-jwt-secret")
      })
      yield* run((http) =>
        Effect.gen(function*() {
          yield* http.send("room", "e", {}, { private: true })
          yield* Effect.flip(http.sendBatch([{ topic: "room", event: "e", payload: {} }]))
        })
      ).pipe(
        Effect.provide(Logger.add(capture)),
        Logger.withMinimumLogLevel(LogLevel.Debug)
      )
      assert.deepStrictEqual(logs.map((l) => [l.level, l.annotations]), [
        ["DEBUG", { method: "POST", url: `${BASE}/room/events/e?private=true`, status: 202 }],
        ["DEBUG", { method: "POST", url: BASE, status: 401 }]
      ])
      const text = JSON.stringify(logs)
      assert.notInclude(text, API_KEY)
      assert.notInclude(text, "user-jwt-secret")
    }))
})
