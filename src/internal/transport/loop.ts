/**
 * The connection loop: one long-lived fiber that connects, runs the heartbeat and the request
 * timers with the open connection, and reconnects on the `Reconnect` schedule, waiting for the
 * network while the device reports none. `connect` starts it, `disconnect` stops it.
 *
 * @internal
 */
import type * as Socket from "@effect/platform/Socket"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberHandle from "effect/FiberHandle"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Tracer from "effect/Tracer"
import * as Attempts from "../../core/connection/attempts.js"
import * as End from "../../core/connection/end.js"
import * as Frames from "../../core/connection/frames.js"
import * as HeartbeatService from "../../Heartbeat.js"
import { ProtocolError, SocketClosed } from "../../RealtimeError.js"
import * as Backoff from "../backoff.js"
import type { Heartbeat } from "./heartbeat.js"
import * as Metrics from "./metrics.js"
import type { Read } from "./read.js"
import type { Requests } from "./requests.js"
import { failureOf } from "./socket.js"
import { ConnectionState, setState, type State } from "./state.js"
import type { Write } from "./write.js"

const { reconnects } = Metrics.metrics

/** @internal */
export const make = (
  state: State,
  socket: Socket.Socket,
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

    const describeEnd = (exit: Exit.Exit<unknown, unknown>): End.End =>
      End.describeEnd(
        Exit.isSuccess(exit) ? undefined : failureOf(exit.cause),
        state.ended,
        maxFrameBytes,
        openTimeoutMillis
      )

    const connection = (backoff: Backoff.Backoff) =>
      Effect.suspend(() => {
        const opened = Deferred.unsafeMake<void>(FiberId.none)
        return socket.runRaw(read.onFrame, {
          onOpen: Effect.gen(function*() {
            backoff.reset()
            yield* write.flush
            state.open = true
            Deferred.unsafeDone(opened, Exit.void)
            yield* setState(state, ConnectionState.Open())
            yield* Effect.logDebug("socket open")
          })
        }).pipe(
          // the heartbeat and the request timers start with the connection; a heartbeat timeout ends it
          Effect.raceFirst(Effect.zipRight(Deferred.await(opened), Effect.raceFirst(heartbeatLoop, timerLoop))),
          Effect.ensuring(Effect.sync(() => {
            state.open = false
            state.heartbeatRef = undefined
          }))
        )
      })

    const loop = Effect.gen(function*() {
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
            openedAt = clock.unsafeCurrentTimeMillis()
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
          yield* PubSub.publish(state.heartbeatHub, HeartbeatService.HeartbeatStatus.Disconnected())
        }
        if (attempts.ended(openedAt, clock.unsafeCurrentTimeMillis())) backoff.reset()
        if (end.permanent) {
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
          failAll(new SocketClosed({ reason: gaveUp, code, status, body }))
          yield* setState(state, ConnectionState.Closed({ reason: gaveUp, code, status, body }))
          return
        }
        reconnects.unsafeUpdate(1, [])
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
    }).pipe(Effect.annotateLogs({ module: "Transport", endpoint: endpoint.display }))

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
      })

    yield* Effect.addFinalizer(() => disconnect({ reason: "transport closed" }))

    // the connection loop outlives whoever connected: it is not a child of their span
    const connect = FiberHandle.run(handle, Effect.mapInputContext(loop, Context.omit(Tracer.ParentSpan)<never>), {
      onlyIfMissing: true
    }).pipe(Effect.asVoid)

    return { connect, disconnect }
  })

/** The connection loop of one transport. @internal */
export type Loop = Effect.Effect.Success<ReturnType<typeof make>>
