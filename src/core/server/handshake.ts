/**
 * The test server's handshake: an upgrade request accepted (with what the connection needs) or
 * refused with the real server's HTTP status and body, as Phoenix's transport then
 * `UserSocket.connect/3` decide it; and the refusals a test injects.
 */
import type * as Model from "../protocol/model.js"
import type { Engine } from "./engine.js"
import * as Jwt from "./jwt.js"

/** An accepted handshake: what the connection needs. */
export interface Accepted {
  readonly _tag: "Accept"
  readonly url: string
  readonly path: string
  readonly vsn: Model.Vsn
  readonly params: Readonly<Record<string, string>>
  readonly headers: Readonly<Record<string, string>>
  readonly token: string
  readonly claims: Jwt.Claims
}

/** The result of a handshake: accepted, with what the connection needs; or an HTTP error. */
export type Handshake =
  | Accepted
  | { readonly _tag: "Refuse"; readonly status: number; readonly body: string }

/** The WebSocket paths the server accepts. */
export const SOCKET_PATHS: ReadonlyArray<string> = ["/socket/websocket", "/realtime/v1/websocket"]

/** Refusals injected by a test: the next `remaining` handshakes get `status` and `{"error": error}`. */
export class Refusals {
  private remaining = 0
  private refusal: { readonly status: number; readonly error: string } = {
    status: 500,
    error: "Error connecting to Realtime"
  }

  set(count: number, status: number, error: string) {
    this.remaining = count
    this.refusal = { status, error }
  }

  /** The refusal of the next handshake, if one is due (and counts it). */
  take(): { readonly status: number; readonly error: string } | undefined {
    if (this.remaining <= 0) return undefined
    this.remaining--
    return this.refusal
  }
}

/** Decides an upgrade request, as Phoenix's transport then `UserSocket.connect/3`. */
export const decide = (engine: Engine, url: string, headers: Readonly<Record<string, string>>): Handshake => {
  let parsed: URL
  try {
    parsed = new URL(url, "http://localhost")
  } catch {
    return refuse(engine, 400, JSON.stringify({ error: "Bad Request" }))
  }
  const path = parsed.pathname.replace(/\/+$/, "")
  if (!SOCKET_PATHS.includes(path)) return refuse(engine, 404, JSON.stringify({ error: "Not Found" }))
  const refusal = engine.refusals.take()
  if (refusal !== undefined) return refuse(engine, refusal.status, JSON.stringify({ error: refusal.error }))
  const params: Record<string, string> = {}
  parsed.searchParams.forEach((value, key) => {
    params[key] = value
  })
  const config = engine.config
  const vsnParam = params.vsn ?? config.vsnDefault
  const vsn: Model.Vsn | undefined = /^1\.0\.\d+$/.test(vsnParam)
    ? "1.0.0"
    : /^2\.0\.\d+$/.test(vsnParam)
    ? "2.0.0"
    : undefined
  if (vsn === undefined) return refuse(engine, 403, "")
  const apiKey = headers["x-api-key"] ?? params.apikey
  if (apiKey === undefined || apiKey === "") {
    return refuse(engine, 401, JSON.stringify({ error: "API key is missing" }))
  }
  const token = engine.resolveKey(apiKey)
  const verified = Jwt.verify(token, config.jwtSecret, engine.env.now())
  if (verified._tag !== "Ok") return refuse(engine, 401, JSON.stringify({ error: Jwt.message(verified) }))
  if (engine.openConnections() >= config.limits.maxConcurrentUsers) {
    return refuse(engine, 429, JSON.stringify({ error: "Too many connected users" }))
  }
  if (engine.joinCounter.current(engine.env.now()) > config.limits.maxJoinsPerSecond) {
    return refuse(engine, 429, JSON.stringify({ error: "Too many joins per second" }))
  }
  return {
    _tag: "Accept",
    url,
    path,
    vsn,
    params,
    headers,
    token,
    claims: verified.claims
  }
}

const refuse = (engine: Engine, status: number, body: string): Handshake => {
  engine.stats.connectionsRefused++
  engine.env.publish({ _tag: "ConnectionRefused", status, body })
  engine.env.log("Debug", "connection refused", { status, body })
  return { _tag: "Refuse", status, body }
}
