/**
 * The connection loop: one long-lived fiber that connects, runs the heartbeat and the request
 * timers with the open connection, and reconnects on the `Reconnect` schedule, waiting for the
 * network while the device reports none. `connect` starts it, `disconnect` stops it.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberHandle from "effect/FiberHandle"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Tracer from "effect/Tracer"
import * as Attempts from "../../../../src/core/connection/attempts.js"
import * as End from "../../../../src/core/connection/end.js"
import * as Frames from "../../../../src/core/connection/frames.js"
import * as HeartbeatService from "../../Heartbeat.js"
import { ProtocolError, SocketClosed } from "../../RealtimeError.js"
import * as Backoff from "../backoff.js"
import { type Heartbeat, HeartbeatTimeout } from "./heartbeat.js"
import * as Metrics from "./metrics.js"
import type { Read } from "./read.js"
import type { Requests } from "./requests.js"
import * as Socket from "./socket.js"
import { ConnectionState, setState, type State } from "./state.js"
import type { Write } from "./write.js"

const { reconnects } = Metrics.metrics

/** @internal */
export const make = (
  state: State,
  read: Read,
  write: Write,
  requests: Requests,
  heartbeat: Heartbeat
) =>
  Effect.gen(function*() {
    const { clock, endpoint, maxFrameBytes, network, openTimeout } = state.settings
    const { heartbeatLoop, online, sleepUnlessWoken } = heartbeat
    const { failAll, failWritten, timerLoop } = requests
    const openTimeoutMillis = Duration.toMillis(openTimeout)

    const describeEnd = (exit: Exit.Exit<unknown, unknown>): End.End => {
      const failure = Exit.isSuccess(exit) ? undefined : Option.getOrUndefined(Cause.findErrorOption(exit.cause))
      return End.describeEnd(
        failure instanceof HeartbeatTimeout ? { _tag: "HeartbeatTimeout" } : Socket.failureOf(failure),
        state.ended,
        maxFrameBytes,
        openTimeoutMillis
      )
    }

    // One connection: opens the socket, then runs the heartbeat and the request timers until the
    // socket ends or a heartbeat goes unanswered. Closing its scope closes the socket (1000).
    const connection = (backoff: Backoff.Backoff) =>
      Effect.gen(function*() {
        const context = yield* Effect.context<never>()
        const run = Effect.runForkWith(context)
        state.runInLoop = (effect) => {
          run(effect)
        }
        const socket = yield* Effect.acquireRelease(
          Effect.sync(() => {
            const socket = Socket.open(state.settings.construct, state.settings.url, read.onMessage)
            state.ended = socket.facts
            state.ws = socket.ws
            return socket
          }),
          (socket) =>
            Effect.sync(() => {
              socket.detach()
              if (state.ws === socket.ws) state.ws = undefined
              if (socket.ws !== undefined && socket.ws.readyState < 2) socket.ws.close(1000)
            })
        )
        yield* Socket.opened(socket).pipe(
          Effect.timeoutOrElse({ duration: openTimeout, orElse: () => Effect.fail(Socket.openTimeoutError) })
        )
        backoff.reset()
        yield* write.flush
        state.open = true
        yield* setState(state, ConnectionState.Open())
        yield* Effect.logDebug("socket open")
        // the heartbeat and the request timers start with the connection; a heartbeat timeout ends it
        return yield* Effect.raceFirst(Socket.closed(socket), Effect.raceFirst(heartbeatLoop, timerLoop))
      }).pipe(
        Effect.scoped,
        Effect.ensuring(Effect.sync(() => {
          state.open = false
          state.heartbeatRef = undefined
        }))
      )

    // set while a finished loop announces its end (see `connect`)
    let ending = false
    const loop = Effect.gen(function*() {
      ending = false
      const backoff = Backoff.make(state.settings.reconnect.reconnect)
      const attempts = new Attempts.Attempts(Duration.toMillis(state.settings.heartbeat.interval))
      while (true) {
        if (network !== undefined && !network.unsafeIsOnline()) {
          // no attempt while the device says there is no network: wait for it, then start over
          yield* setState(state, ConnectionState.Offline({ reason: Attempts.OFFLINE_REASON }))
          yield* Effect.logInfo("offline: waiting for the network")
          yield* online(network)
          backoff.reset()
          attempts.online()
        }
        heartbeat.attempting()
        yield* setState(state, ConnectionState.Connecting({ attempt: attempts.attempt }))
        let openedAt: number | undefined
        const exit = yield* Effect.exit(connection({
          next: backoff.next,
          reset: () => {
            openedAt = clock.currentTimeMillisUnsafe()
          }
        }))
        const end = describeEnd(exit)
        const { body, code, reason, status } = end
        if (end.frameTooLarge) {
          // the refused frame is a bad frame like any other: counted and logged (throttled)
          const counted = read.badFrame(
            new ProtocolError({ reason: "FrameTooLarge", detail: Frames.refusedDetail(maxFrameBytes) })
          )
          if (counted !== undefined) yield* counted
        }
        failWritten(new SocketClosed({ reason, code, status, body }))
        if (openedAt !== undefined) {
          PubSub.publishUnsafe(state.heartbeatHub, HeartbeatService.HeartbeatStatus.Disconnected())
        }
        if (attempts.ended(openedAt, clock.currentTimeMillisUnsafe())) backoff.reset()
        if (end.permanent) {
          ending = true
          failAll(new SocketClosed({ reason, code, status, body }))
          yield* setState(state, ConnectionState.Closed({ reason, code, status, body }))
          yield* Effect.logError("the server refused the connection; not reconnecting until connect").pipe(
            Effect.annotateLogs({ reason, status: status ?? "none" })
          )
          return
        }
        // the network went away: the failure says nothing about the server, wait for the network
        if (network !== undefined && !network.unsafeIsOnline()) continue
        const delay = yield* backoff.next(exit)
        if (Option.isNone(delay)) {
          const gaveUp = End.gaveUp(attempts.attempt, reason)
          ending = true
          failAll(new SocketClosed({ reason: gaveUp, code, status, body }))
          yield* setState(state, ConnectionState.Closed({ reason: gaveUp, code, status, body }))
          return
        }
        reconnects.updateUnsafe(1, state.settings.metricContext)
        const attempt = attempts.attempt
        yield* setState(
          state,
          ConnectionState.Reconnecting({ attempt, delay: delay.value, reason, code, status, body })
        )
        yield* Effect.logWarning("socket closed, reconnecting").pipe(
          Effect.annotateLogs({ attempt, reason, code: code ?? "none", delayMs: Duration.toMillis(delay.value) })
        )
        yield* sleepUnlessWoken(delay.value)
      }
    }).pipe(
      Effect.annotateLogs({ module: "Transport", endpoint: endpoint.display }),
      // the connection loop outlives whoever connected: it is not a child of their span
      Effect.updateContext((context: Context.Context<never>) => Context.omit(Tracer.ParentSpan)(context))
    )

    const handle = yield* FiberHandle.make<void, never>()

    const disconnect = (disconnectOptions?: { readonly code?: number; readonly reason?: string }) =>
      Effect.gen(function*() {
        const reason = disconnectOptions?.reason ?? "disconnected"
        const code = disconnectOptions?.code ?? 1000
        const refused = state.open && write.writable() ? End.closeSocket(state.ws!, code, reason) : undefined
        if (refused !== undefined) {
          yield* Effect.logWarning("the socket refused the close code or reason: closed with 1000").pipe(
            Effect.annotateLogs({ code, reason, refused })
          )
        }
        yield* FiberHandle.clear(handle)
        state.open = false
        failAll(new SocketClosed({ reason }))
        yield* setState(state, ConnectionState.Closed({ reason }))
      }).pipe(Effect.withSpan("Transport.disconnect", { attributes: { endpoint: endpoint.display } }))

    yield* Effect.addFinalizer(() => disconnect({ reason: "transport closed" }))

    const startLoop = FiberHandle.run(handle, loop, { onlyIfMissing: true }).pipe(
      Effect.asVoid,
      Effect.withSpan("Transport.connect", { attributes: { endpoint: endpoint.display } })
    )
    // Every subscribe connects: while the loop runs that is a no-op (what `onlyIfMissing` would do),
    // taken here without its span and fiber bookkeeping, an eighth of a subscribe's CPU in the profile
    // (PERFORMANCE.md, Effect 4). Only a connect that starts the loop is traced.
    //
    // `ending`: the loop is announcing its end (Closed, pending pushes failed). Effect 4 runs the
    // fibers that wakes inside the announcement, while the finished loop is still in the handle: a
    // connect from one of them (a state consumer that reconnects on Closed, a retrying push) must
    // start a new loop, not see the old one as running and do nothing (the client stayed Closed).
    const connect = Effect.suspend(() =>
      ending
        ? FiberHandle.run(handle, loop).pipe(
          Effect.asVoid,
          Effect.withSpan("Transport.connect", { attributes: { endpoint: endpoint.display } })
        )
        : Option.isSome(FiberHandle.getUnsafe(handle))
        ? Effect.void
        : startLoop
    )

    return { connect, disconnect }
  })

/** The connection loop of one transport. @internal */
export type Loop = Effect.Success<ReturnType<typeof make>>
