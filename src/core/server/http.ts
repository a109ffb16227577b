/**
 * The HTTP broadcast API of the test server (`POST /api/broadcast`, `POST
 * /api/broadcast/:topic/events/:event`), with the real server's statuses and bodies. Pure over the
 * engine: the real listener and the in-memory `fetch` / `HttpClient` both call `handle`.
 */
import { isRecord } from "../guards.js"
import type { Engine } from "./engine.js"
import * as Jwt from "./jwt.js"
import type * as RS from "./model.js"

const textEncoder = new TextEncoder()
const textDecoder = new TextDecoder()

const CORS: Readonly<Record<string, string>> = {
  "access-control-allow-origin": "*",
  "access-control-allow-headers": "authorization, apikey, content-type, x-client-info",
  "access-control-allow-methods": "POST, OPTIONS"
}

const response = (
  status: number,
  body?: unknown,
  headers?: Readonly<Record<string, string>>
): RS.HttpResponse => {
  const text = body === undefined ? "" : JSON.stringify(body)
  return {
    status,
    headers: {
      ...CORS,
      ...(body === undefined ? {} : { "content-type": "application/json; charset=utf-8" }),
      ...headers
    },
    body: textEncoder.encode(text)
  }
}

const lowerCase = (headers: Readonly<Record<string, string>>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const key of Object.keys(headers)) out[key.toLowerCase()] = headers[key]!
  return out
}

const BATCH = /^\/api\/broadcast\/?$/
const SINGLE = /^\/api\/broadcast\/([^/]+)\/events\/([^/]+)\/?$/

/** Handles one HTTP request. Never fails: bad input is a 4xx response. */
export const handle = (
  engine: Engine,
  request: {
    readonly method: string
    readonly path: string
    readonly headers: Readonly<Record<string, string>>
    readonly body: Uint8Array
  }
): RS.HttpResponse => {
  engine.stats.httpRequests++
  let result: RS.HttpResponse
  let path = "/"
  try {
    const url = new URL(request.path, "http://localhost")
    path = url.pathname.replace(/^\/realtime\/v1(?=\/)/, "")
    result = route(
      engine,
      request.method.toUpperCase(),
      path,
      url.searchParams,
      lowerCase(request.headers),
      request.body
    )
  } catch (cause) {
    engine.env.log("Error", "unexpected error in the HTTP API", { cause: String(cause) })
    result = response(500, { message: "Unknown error" })
  }
  engine.env.publish({ _tag: "HttpRequest", method: request.method, path, status: result.status })
  return result
}

const route = (
  engine: Engine,
  method: string,
  path: string,
  query: URLSearchParams,
  headers: Record<string, string>,
  body: Uint8Array
): RS.HttpResponse => {
  const single = SINGLE.exec(path)
  if (!BATCH.test(path) && single === null) return response(404, { errors: { detail: "Not Found" } })
  if (method === "OPTIONS") return response(204)
  if (method !== "POST") return response(404, { errors: { detail: "Not Found" } })
  const claims = authenticate(engine, headers)
  if (claims === undefined) return response(401, { message: "Unauthorized" })
  const { allowed, count } = engine.countHttpEvent()
  const limit = engine.config.limits.maxEventsPerSecond
  const rate = {
    "x-rate-rolling": String(count),
    "x-rate-limit": String(limit),
    "x-rate-limit-remaining": String(Math.max(0, limit - count))
  }
  if (!allowed) return response(429, { message: "Too many requests" }, rate)
  const result = single === null
    ? batch(engine, claims, headers, body)
    : singleEvent(engine, claims, headers, body, single[1]!, single[2]!, query.get("private") === "true")
  return { ...result, headers: { ...result.headers, ...rate } }
}

/** `Authorization: Bearer <jwt>` first, else the `apikey` header. */
const authenticate = (engine: Engine, headers: Record<string, string>): Jwt.Claims | undefined => {
  const authorization = headers.authorization
  const bearer = authorization !== undefined && /^bearer /i.test(authorization)
    ? authorization.slice(7).trim()
    : undefined
  const token = bearer !== undefined && bearer !== "" ? bearer : headers.apikey
  if (token === undefined || token === "") return undefined
  const verified = Jwt.verify(engine.resolveKey(token), engine.config.jwtSecret, engine.env.now())
  return verified._tag === "Ok" ? verified.claims : undefined
}

const parseJson = (body: Uint8Array): { readonly ok: true; readonly value: unknown } | { readonly ok: false } => {
  try {
    const text = textDecoder.decode(body)
    return text.trim() === "" ? { ok: true, value: undefined } : { ok: true, value: JSON.parse(text) }
  } catch {
    return { ok: false }
  }
}

const sizeOf = (value: unknown): number => {
  if (value instanceof Uint8Array) return value.byteLength
  try {
    return textEncoder.encode(JSON.stringify(value) ?? "").byteLength
  } catch {
    return 0
  }
}

const batch = (
  engine: Engine,
  claims: Jwt.Claims,
  headers: Record<string, string>,
  body: Uint8Array
): RS.HttpResponse => {
  const contentType = headers["content-type"]
  if (contentType !== undefined && !/^application\/json\b/i.test(contentType)) {
    return response(415, { error: "Unsupported Media Type. Use application/json or application/octet-stream" })
  }
  const parsed = parseJson(body)
  if (!parsed.ok) return response(400, { errors: { detail: "Bad Request" } })
  const json = parsed.value
  const messages = isRecord(json) ? json.messages : undefined
  if (messages === undefined || messages === null) return response(422, { errors: { messages: ["can't be blank"] } })
  if (!Array.isArray(messages)) return response(422, { errors: { messages: ["is invalid"] } })
  const limit = engine.config.limits.maxPayloadBytes
  let invalid = false
  const errors = messages.map((message): Record<string, Array<string>> => {
    const e: Record<string, Array<string>> = {}
    if (!isRecord(message)) {
      invalid = true
      return { message: ["is invalid"] }
    }
    for (const field of ["topic", "event"] as const) {
      const value = message[field]
      if (value === undefined || value === null || value === "") e[field] = ["can't be blank"]
      else if (typeof value !== "string") e[field] = ["is invalid"]
    }
    const payload = message.payload
    if (payload === undefined || payload === null) e.payload = ["can't be blank"]
    else if (!isRecord(payload)) e.payload = ["is invalid"]
    else if (sizeOf(payload) > limit) e.payload = ["Payload size exceeds tenant limit"]
    if (message.private !== undefined && message.private !== null && typeof message.private !== "boolean") {
      e.private = ["is invalid"]
    }
    if (message.id !== undefined && message.id !== null && typeof message.id !== "string") e.id = ["is invalid"]
    if (Object.keys(e).length > 0) invalid = true
    return e
  })
  if (invalid) return response(422, { errors: { messages: errors } })
  // private messages: the write policy per topic, with the caller's claims; denied topics are skipped
  const allowed = new Map<string, boolean>()
  for (const message of messages as Array<Record<string, unknown>>) {
    const subtopic = message.topic as string
    const isPrivate = message.private === true
    if (isPrivate) {
      let write = allowed.get(subtopic)
      if (write === undefined) {
        write = engine.permissions(claims, subtopic).broadcastWrite
        allowed.set(subtopic, write)
      }
      if (!write) {
        engine.env.log("Debug", "HTTP batch broadcast: write denied, skipped", { topic: subtopic })
        continue
      }
    }
    const payload: Record<string, unknown> = {
      type: "broadcast",
      event: message.event,
      payload: message.payload
    }
    if (typeof message.id === "string") payload.meta = { id: message.id }
    engine.fanOut(isPrivate, subtopic, { _tag: "Text", payload })
  }
  return response(202)
}

const singleEvent = (
  engine: Engine,
  claims: Jwt.Claims,
  headers: Record<string, string>,
  body: Uint8Array,
  rawTopic: string,
  rawEvent: string,
  isPrivate: boolean
): RS.HttpResponse => {
  let subtopic: string
  let event: string
  try {
    subtopic = decodeURIComponent(rawTopic)
    event = decodeURIComponent(rawEvent)
  } catch {
    return response(400, { errors: { detail: "Bad Request" } })
  }
  const contentType = (headers["content-type"] ?? "application/json").toLowerCase()
  let payload: unknown
  if (/^application\/json\b/.test(contentType)) {
    const parsed = parseJson(body)
    if (!parsed.ok) return response(400, { errors: { detail: "Bad Request" } })
    payload = parsed.value
  } else if (/^application\/octet-stream\b/.test(contentType)) {
    payload = body.slice()
  } else {
    return response(415, { error: "Unsupported Media Type. Use application/json or application/octet-stream" })
  }
  if (payload === undefined || payload === null) return response(422, { errors: { payload: ["can't be blank"] } })
  if (sizeOf(payload) > engine.config.limits.maxPayloadBytes) {
    return response(422, { errors: { payload: ["Payload size exceeds tenant limit"] } })
  }
  if (isPrivate && !engine.permissions(claims, subtopic).broadcastWrite) {
    return response(403, { message: "Unauthorized" })
  }
  engine.fanOut(isPrivate, subtopic, { _tag: "User", event, payload })
  return response(202)
}

/** A request body as bytes (none is empty). */
export const bodyBytes = (body: Uint8Array | string | undefined): Uint8Array =>
  body === undefined ? new Uint8Array(0) : typeof body === "string" ? new TextEncoder().encode(body) : body

/** A WHATWG `Response` of an answer of `handle` (no body for 204 and 304). */
export const webResponse = (result: RS.HttpResponse): Response =>
  new Response(
    result.body.byteLength === 0 || result.status === 204 || result.status === 304
      ? null
      : (result.body as Uint8Array<ArrayBuffer>),
    { status: result.status, headers: result.headers }
  )

/** Handles an HTTP request of a test (its body as bytes or text). */
export const handleRequest = (engine: Engine, request: RS.HttpRequest): RS.HttpResponse =>
  handle(engine, {
    method: request.method,
    path: request.path,
    headers: request.headers,
    body: bodyBytes(request.body)
  })

/** A `fetch` answered by the HTTP API in memory (realtime-js's `fetch` option). */
export const fetch =
  (engine: Engine) => async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init)
    const body = new Uint8Array(await request.arrayBuffer())
    const headers: Record<string, string> = {}
    request.headers.forEach((value, key) => {
      headers[key] = value
    })
    const url = new URL(request.url)
    return webResponse(
      handleRequest(engine, { method: request.method, path: url.pathname + url.search, headers, body })
    )
  }
