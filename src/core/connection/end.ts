/**
 * How a connection ended, in words: what the socket said (its close code and reason, its error, the
 * HTTP answer to a refused upgrade) and why the loop stopped waiting for it, turned into the reason
 * and codes of the connection state, and whether the server will refuse again.
 */

/**
 * The HTTP answer to a refused upgrade. A WebSocket implementation that can see it (the Node one,
 * the fake socket of the testing module) sets it as `upgradeResponse` before its `error` event.
 */
export interface UpgradeResponse {
  readonly status: number
  readonly body: string
}

/** What a socket said when it ended (filled from its own events, the first of each kind kept). */
export interface SocketFacts {
  code?: number
  closeReason?: string
  error?: string
  upgrade?: UpgradeResponse
}

/**
 * Why the connection's fiber stopped, as each edition reads it from its exit: a heartbeat went
 * unanswered, the upgrade got no answer in time, the socket could not open, or it closed (with the
 * code and reason of its close error). `undefined`: anything else.
 */
export type Failure =
  | { readonly _tag: "HeartbeatTimeout" }
  | { readonly _tag: "OpenTimeout" }
  | { readonly _tag: "Open" }
  | { readonly _tag: "Close"; readonly code: number; readonly closeReason: string | undefined }

/** How a connection ended. */
export interface End {
  readonly reason: string
  readonly code?: number | undefined
  readonly status?: number | undefined
  readonly body?: string | undefined
  /** The server will refuse again: stop until the next `connect`. */
  readonly permanent: boolean
  /** Our socket refused an inbound frame over `maxFrameBytes` (a bad frame, counted as such). */
  readonly frameTooLarge?: boolean | undefined
}

/** `ws`'s error when a message is over its `maxPayload`. */
const TOO_LARGE = /^Max payload size exceeded/

/** Describes the end of a connection from why its fiber stopped and what its socket said. */
export const describeEnd = (
  failure: Failure | undefined,
  facts: SocketFacts,
  maxFrameBytes: number,
  openTimeoutMillis: number
): End => {
  if (failure?._tag === "HeartbeatTimeout") return { reason: "heartbeat timeout", permanent: false }
  const upgrade = facts.upgrade
  if (upgrade !== undefined) {
    const status = upgrade.status
    return {
      reason: `upgrade refused: HTTP ${status}${upgrade.body.length > 0 ? ` ${upgrade.body}` : ""}`,
      status,
      body: upgrade.body,
      // a 4xx will be answered the same way again (bad key, wrong path); 408 and 429 will not
      permanent: status >= 400 && status < 500 && status !== 408 && status !== 429
    }
  }
  // ws refused a message over its maxPayload (our maxFrameBytes) while reading it: it sends a
  // 1009 close and fails the socket, which then ends with an error rather than a close code
  if (facts.error !== undefined && TOO_LARGE.test(facts.error)) {
    return {
      reason: `frame too large (1009: over maxFrameBytes, ${maxFrameBytes} bytes)`,
      code: 1009,
      permanent: false,
      frameTooLarge: true
    }
  }
  if (failure?._tag === "OpenTimeout") {
    return { reason: `no answer to the upgrade within ${openTimeoutMillis} ms`, permanent: false }
  }
  const code = facts.code ?? (failure?._tag === "Close" ? failure.code : undefined)
  const closeReason = facts.closeReason ?? (failure?._tag === "Close" ? failure.closeReason : undefined)
  const said = closeReason ? closeReason : facts.error
  if (code !== undefined) {
    const what = code === 1000
      ? "closed by the server"
      : code === 1006
      ? "connection lost"
      : code === 1009
      ? "frame too large"
      : "closed"
    return { reason: `${what} (${code}${said ? `: ${said}` : ""})`, code, permanent: false }
  }
  if (failure?._tag === "Open") {
    return { reason: `connection failed${said ? `: ${said}` : ""}`, permanent: false }
  }
  return { reason: said ? `connection lost: ${said}` : "connection lost", permanent: false }
}

/** The message of a socket's `error` event (a WHATWG `ErrorEvent` or `ws`'s), if it has one. */
export const errorMessage = (event: unknown): string | undefined => {
  const e = event as { readonly message?: unknown; readonly error?: { readonly message?: unknown } } | undefined
  if (typeof e?.message === "string" && e.message.length > 0) return e.message
  if (typeof e?.error?.message === "string" && e.error.message.length > 0) return e.error.message
  return undefined
}

/** The state's reason when the reconnect schedule ended. */
export const gaveUp = (attempts: number, reason: string): string =>
  `gave up reconnecting after ${attempts} attempts: ${reason}`

/**
 * Closes `socket` with the user's `code` and `reason`. A WebSocket throws on what a client may not
 * send (a code outside 1000-1003, 1007-1014 and 3000-4999, a reason over 123 bytes): then it closes
 * with 1000 and no reason, and the refusal is returned to be logged (a disconnect never fails).
 */
export const closeSocket = (
  socket: { readonly close: (code?: number, reason?: string) => void },
  code: number,
  reason: string
): string | undefined => {
  try {
    socket.close(code, reason)
    return undefined
  } catch (cause) {
    socket.close(1000)
    return cause instanceof Error ? cause.message : String(cause)
  }
}
