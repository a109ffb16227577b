/**
 * Realtime endpoints: the one URL a user gives, checked, and the socket and HTTP bases derived from it.
 */
import * as Result from "./result.js"

/** The bases derived from a Realtime URL. */
export interface Endpoint {
  /** WebSocket base without `/websocket`, e.g. `wss://ref.supabase.co/realtime/v1` */
  readonly socket: string
  /** HTTP base of the broadcast API, e.g. `https://ref.supabase.co/realtime/v1/api/broadcast` */
  readonly broadcast: string
  /** Scheme + host + path for logs: never a query string (it may hold the apikey). */
  readonly display: string
}

/**
 * Accepts a Realtime endpoint in any of the forms users have at hand and derives the socket and HTTP
 * bases from it:
 * - a Supabase project URL `https://<ref>.supabase.co` → `wss://<ref>.supabase.co/realtime/v1`
 * - a Realtime endpoint `wss://<ref>.supabase.co/realtime/v1` or `ws://localhost:4000/socket`
 * - either with a trailing `/websocket` or `/`.
 * A query string, a fragment or credentials are refused: the apikey goes in options, never in the
 * URL. Errors (the detail of an invalid-argument error) never quote the input (a malformed URL may
 * hold the key): they say what is wrong.
 */
export const parseEndpoint = (input: string): Result.Result<Endpoint, string> => {
  // The URL is never echoed in an error, not even in part: a malformed one may hold the key.
  if (typeof input !== "string" || input.trim() === "") {
    return Result.err(`invalid Realtime URL: it is empty${EXPECTED}`)
  }
  let url: URL
  try {
    url = new URL(input)
  } catch {
    return Result.err(`invalid Realtime URL: ${whatIsWrong(input)}${EXPECTED}`)
  }
  if (url.search !== "" || url.hash !== "") {
    return Result.err("invalid Realtime URL: it carries a query string or fragment (pass the apikey as an option)")
  }
  if (url.username !== "" || url.password !== "") {
    return Result.err("invalid Realtime URL: it carries credentials (user:password@); pass the apikey as an option")
  }
  let secure: boolean
  switch (url.protocol) {
    case "ws:":
    case "http:":
      secure = false
      break
    case "wss:":
    case "https:":
      secure = true
      break
    default:
      return Result.err(
        `unsupported Realtime URL scheme${
          /^[a-z][a-z0-9+.-]{0,9}:$/i.test(url.protocol) ? ` '${url.protocol}'` : ""
        }${EXPECTED}`
      )
  }
  let path = url.pathname.replace(/\/+$/, "")
  if (path.endsWith("/websocket")) path = path.slice(0, -"/websocket".length)
  if (path === "" && (url.protocol === "http:" || url.protocol === "https:")) path = "/realtime/v1"
  const host = url.host
  const socket = `${secure ? "wss" : "ws"}://${host}${path}`
  // the HTTP API lives beside the socket mount: strip `/socket` (self-hosted) as realtime-js does
  const httpPath = path.endsWith("/socket") ? path.slice(0, -"/socket".length) : path
  const broadcast = `${secure ? "https" : "http"}://${host}${httpPath}/api/broadcast`
  return Result.ok({ socket, broadcast, display: socket })
}

const EXPECTED = " (expected https://<ref>.supabase.co, wss://<ref>.supabase.co/realtime/v1 or ws://host:port/socket)"

/** Why `input` is not a URL, in words that quote none of it. */
const whatIsWrong = (input: string): string =>
  /\s/.test(input.trim())
    ? "it contains whitespace"
    : !/^[a-z][a-z0-9+.-]*:/i.test(input.trim())
    ? "it has no scheme"
    : "it does not parse as an absolute URL"
