/**
 * The socket of the loop: `@effect/platform`'s `Socket` over the `WebSocketConstructor`, each
 * WebSocket it opens watched for what it says when it ends (its close code and reason, its error,
 * and the HTTP answer to a refused upgrade where the implementation exposes it).
 *
 * @internal
 */
import * as Socket from "@effect/platform/Socket"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as End from "../../core/connection/end.js"
import { HeartbeatTimeout } from "./heartbeat.js"
import type { State } from "./state.js"

/**
 * The loop's socket. Each WebSocket it opens becomes `state.ws` and its facts `state.ended`.
 *
 * @internal
 */
export const make = (state: State): Effect.Effect<Socket.Socket, never, Socket.WebSocketConstructor> =>
  Effect.gen(function*() {
    const construct = yield* Socket.WebSocketConstructor
    return yield* Socket.makeWebSocket(state.settings.url, {
      openTimeout: state.settings.openTimeout,
      closeCodeIsError: () => true
    })
      .pipe(
        Effect.provideService(Socket.WebSocketConstructor, (url, protocols) => {
          const facts: End.SocketFacts = {}
          state.ended = facts
          let created: globalThis.WebSocket
          try {
            created = construct(url, protocols)
          } catch (cause) {
            // no WebSocket here, or a URL it refuses: a failed attempt that says why
            facts.error = cause instanceof Error ? cause.message : String(cause)
            throw new ConstructorFailed(cause)
          }
          // a "blob" binaryType would be decoded asynchronously and reorder binary frames against
          // text frames (reference/effect-idioms.md §1.4)
          if (created.binaryType === "blob") created.binaryType = "arraybuffer"
          state.ws = created
          created.addEventListener("error", (event: Event) => {
            const message = End.errorMessage(event)
            if (message !== undefined) facts.error ??= message
          })
          created.addEventListener("close", (event: CloseEvent) => {
            facts.code ??= event.code
            facts.closeReason ??= event.reason
          })
          const upgrade = () => {
            const refused = (created as { readonly upgradeResponse?: End.UpgradeResponse }).upgradeResponse
            if (refused !== undefined) facts.upgrade ??= refused
          }
          created.addEventListener("error", upgrade)
          created.addEventListener("close", upgrade)
          return created
        })
      )
  })

/** The `WebSocketConstructor` threw: the socket died before it could open. */
class ConstructorFailed {
  constructor(readonly cause: unknown) {}
}

/** Why the connection's fiber stopped, as the core describes it. @internal */
export const failureOf = (cause: Cause.Cause<unknown>): End.Failure | undefined => {
  if (Option.getOrUndefined(Cause.dieOption(cause)) instanceof ConstructorFailed) return { _tag: "Open" }
  const failure = Option.getOrUndefined(Cause.failureOption(cause))
  if (failure instanceof HeartbeatTimeout) return { _tag: "HeartbeatTimeout" }
  if (!Socket.isSocketError(failure)) return undefined
  switch (failure.reason) {
    case "OpenTimeout":
      return { _tag: "OpenTimeout" }
    case "Open":
      return { _tag: "Open" }
    case "Close": {
      const close = failure as Socket.SocketCloseError
      return { _tag: "Close", code: close.code, closeReason: close.closeReason }
    }
    default:
      return undefined
  }
}
