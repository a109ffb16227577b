import * as Either from "effect/Either"
import { InvalidArgument } from "../RealtimeError.js"

/** @internal */
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
 * A query string or fragment is refused: the apikey goes in options, never in the URL.
 *
 * @internal
 */
export const parseEndpoint = (input: string): Either.Either<Endpoint, InvalidArgument> => {
  let url: URL
  try {
    url = new URL(input)
  } catch {
    return Either.left(new InvalidArgument({ detail: `invalid Realtime URL: ${redactQuery(input)}` }))
  }
  if (url.search !== "" || url.hash !== "") {
    return Either.left(
      new InvalidArgument({
        detail: `Realtime URL must not carry a query string or fragment (pass the apikey as an option): ${
          redactQuery(input)
        }`
      })
    )
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
      return Either.left(new InvalidArgument({ detail: `unsupported Realtime URL scheme '${url.protocol}'` }))
  }
  let path = url.pathname.replace(/\/+$/, "")
  if (path.endsWith("/websocket")) path = path.slice(0, -"/websocket".length)
  if (path === "" && (url.protocol === "http:" || url.protocol === "https:")) path = "/realtime/v1"
  const host = url.host
  const socket = `${secure ? "wss" : "ws"}://${host}${path}`
  // the HTTP API lives beside the socket mount: strip `/socket` (self-hosted) as realtime-js does
  const httpPath = path.endsWith("/socket") ? path.slice(0, -"/socket".length) : path
  const broadcast = `${secure ? "https" : "http"}://${host}${httpPath}/api/broadcast`
  return Either.right({ socket, broadcast, display: socket })
}

const redactQuery = (input: string) => input.replace(/\?.*$/, "?…")
