/**
 * One socket of the loop, over the raw `WebSocketLike` of the constructor: its events are read
 * directly (a `Socket` reader hands out one pull at a time, which is slower). Its `message` events
 * go straight to the read path; its end is its `close` event; an `error` is recorded, and ends it at
 * once only if no `close` follows within a macrotask (every WebSocket sends one, with the code the
 * state reports).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Socket from "effect/socket/Socket"
import * as End from "../../../../src/core/connection/end.js"
import { constVoid } from "./state.js"

/**
 * One socket of the loop: the raw `WebSocketLike` from the constructor, what it said, and the one
 * fiber waiting for it to open or to end.
 *
 * @internal
 */
export interface Connection {
  readonly ws: Socket.WebSocketLike | undefined
  readonly facts: End.SocketFacts
  opened: boolean
  /** Why it ended (the first of its `error` / `close`), once it did. */
  ended: Socket.SocketError | undefined
  /** The waiting fiber: resumed on `open` (void) or on the end (the error). */
  resume: ((effect: Effect.Effect<void, Socket.SocketError>) => void) | undefined
  /** Detaches the listeners. */
  readonly detach: () => void
}

/** Opens a socket from `construct` and listens to it. @internal */
export const open = (
  construct: Socket.WebSocketConstructor["Service"],
  url: string,
  onMessage: (event: Socket.WebSocketEvent) => void
): Connection => {
  const facts: End.SocketFacts = {}
  let created: Socket.WebSocketLike
  try {
    created = construct(url)
  } catch (cause) {
    facts.error = cause instanceof Error ? cause.message : String(cause)
    return {
      ws: undefined,
      facts,
      opened: false,
      ended: new Socket.SocketError({ reason: new Socket.SocketOpenError({ kind: "Unknown", cause }) }),
      resume: undefined,
      detach: constVoid
    }
  }
  // a "blob" binaryType would be decoded asynchronously and reorder binary frames against text
  // frames
  const typed = created as { binaryType?: unknown }
  if (typed.binaryType === "blob") typed.binaryType = "arraybuffer"
  let graceTimer: ReturnType<typeof setTimeout> | undefined
  const end = (error: Socket.SocketError) => {
    if (graceTimer !== undefined) clearTimeout(graceTimer)
    graceTimer = undefined
    if (connection.ended !== undefined) return
    connection.ended = error
    const resume = connection.resume
    connection.resume = undefined
    resume?.(Effect.fail(error))
  }
  const upgrade = () => {
    const refused = (created as { readonly upgradeResponse?: End.UpgradeResponse }).upgradeResponse
    if (refused !== undefined) facts.upgrade ??= refused
  }
  const onOpen = () => {
    if (connection.ended !== undefined || connection.opened) return
    connection.opened = true
    const resume = connection.resume
    connection.resume = undefined
    resume?.(Effect.void)
  }
  const onError = (event: Socket.WebSocketEvent) => {
    const message = End.errorMessage(event)
    if (message !== undefined) facts.error ??= message
    upgrade()
    if (connection.ended !== undefined || graceTimer !== undefined) return
    const error = new Socket.SocketError({
      reason: connection.opened
        ? new Socket.SocketReadError({ cause: event })
        : new Socket.SocketOpenError({ kind: "Unknown", cause: event })
    })
    graceTimer = setTimeout(() => end(error), 0)
  }
  const onClose = (event: Socket.WebSocketEvent) => {
    const code = typeof event.code === "number" ? event.code : 1006
    facts.code ??= code
    if (typeof event.reason === "string") facts.closeReason ??= event.reason
    upgrade()
    end(
      new Socket.SocketError({
        reason: new Socket.SocketCloseError({
          code,
          ...(typeof event.reason === "string" && event.reason.length > 0 ? { closeReason: event.reason } : {})
        })
      })
    )
  }
  const connection: Connection = {
    ws: created,
    facts,
    opened: created.readyState === 1,
    ended: undefined,
    resume: undefined,
    detach: () => {
      if (graceTimer !== undefined) clearTimeout(graceTimer)
      graceTimer = undefined
      created.removeEventListener("message", onMessage)
      created.removeEventListener("open", onOpen)
      // a late error (a handshake aborted by the close below) must still have a listener: `ws`
      // throws an `error` event nobody listens to
      created.addEventListener("error", constVoid)
      created.removeEventListener("error", onError)
      created.removeEventListener("close", onClose)
    }
  }
  created.addEventListener("message", onMessage)
  created.addEventListener("open", onOpen)
  created.addEventListener("error", onError)
  created.addEventListener("close", onClose)
  return connection
}

/** Waits for the socket to open (void) or to end first (its error). @internal */
export const opened = (connection: Connection): Effect.Effect<void, Socket.SocketError> =>
  Effect.callback<void, Socket.SocketError>((resume) => {
    if (connection.ended !== undefined) return resume(Effect.fail(connection.ended))
    if (connection.opened) return resume(Effect.void)
    connection.resume = resume
    return Effect.sync(() => {
      connection.resume = undefined
    })
  })

/** Waits for the socket to end: fails with why. @internal */
export const closed = (connection: Connection): Effect.Effect<never, Socket.SocketError> =>
  Effect.callback<never, Socket.SocketError>((resume) => {
    if (connection.ended !== undefined) return resume(Effect.fail(connection.ended))
    connection.resume = resume as (effect: Effect.Effect<void, Socket.SocketError>) => void
    return Effect.sync(() => {
      connection.resume = undefined
    })
  })

/** The error of a socket that did not open within `openTimeout`. @internal */
export const openTimeoutError: Socket.SocketError = new Socket.SocketError({
  reason: new Socket.SocketOpenError({ kind: "Timeout", cause: new Error("timeout waiting for \"open\"") })
})

/** Why the connection's fiber stopped, as the core describes it. @internal */
export const failureOf = (failure: unknown): End.Failure | undefined => {
  if (!Socket.isSocketError(failure)) return undefined
  const reason = failure.reason
  switch (reason._tag) {
    case "SocketOpenError":
      return reason.kind === "Timeout" ? { _tag: "OpenTimeout" } : { _tag: "Open" }
    case "SocketCloseError":
      return { _tag: "Close", code: reason.code, closeReason: reason.closeReason }
    default:
      return undefined
  }
}
