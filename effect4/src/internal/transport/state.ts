/**
 * The state one transport's modules share: its settings and services, the connection state and its
 * subscribers, the routes, the requests waiting for a reply, the buffer of pushes made while
 * disconnected, the current socket and the heartbeat in flight.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import type * as Socket from "effect/socket/Socket"
import * as Deadlines from "../../../../src/core/connection/deadlines.js"
import type * as Options from "../../../../src/core/connection/options.js"
import type * as Requests from "../../../../src/core/connection/requests.js"
import * as Shared from "../../../../src/core/connection/state.js"
import type * as Heartbeat from "../../Heartbeat.js"
import type * as Network from "../../Network.js"
import type * as Protocol from "../../Protocol.js"
import type { PushTimeout, SocketClosed } from "../../RealtimeError.js"
import type * as Reconnect from "../../Reconnect.js"
import type * as Transport from "../../Transport.js"
import { Waiter } from "../waiter.js"

/** @internal */
export const ConnectionState: Data.TaggedEnum.Constructor<Transport.ConnectionState> = Data.taggedEnum<
  Transport.ConnectionState
>()

/**
 * A request waiting for its reply: completed once (by the reply, its timer or the end of the
 * connection), then handed to its waiter. Completing it disarms its timer.
 *
 * @internal
 */
export class Pending extends Waiter<Transport.Reply, SocketClosed | PushTimeout>
  implements Requests.Request<Exit.Exit<Transport.Reply, SocketClosed | PushTimeout>>
{
  written = false
  timer: Deadlines.Timer | undefined = undefined
  constructor(readonly topic: string, readonly joinRef: string | null) {
    super()
  }
  complete(exit: Exit.Exit<Transport.Reply, SocketClosed | PushTimeout>): void {
    Deadlines.disarm(this.timer)
    this.settle(exit)
  }
}

/** @internal */
export const constVoid = (): void => {}

/** A push made while disconnected, written on the next open. @internal */
export interface Buffered {
  readonly frame: Protocol.Frame
  readonly done: Deferred.Deferred<void, SocketClosed>
  readonly onWritten: (() => void) | undefined
  cancelled: boolean
}

/** What the transport runs with: the core's checked settings, and its services. @internal */
export interface Settings extends Options.Settings {
  readonly serializer: Protocol.Serializer
  readonly defaultTimeout: Duration.Duration
  readonly openTimeout: Duration.Duration
  readonly heartbeat: Heartbeat.Heartbeat
  readonly reconnect: Reconnect.Reconnect
  readonly network: Network.Network | undefined
  readonly construct: Socket.WebSocketConstructor["Service"]
  readonly clock: Clock.Clock
  /** Metrics are updated synchronously in the read path, against the registry of this context. */
  readonly metricContext: Context.Context<never>
  /** The transport's scope (the summary of bad frames is forked in it). */
  readonly scope: Scope.Scope
}

/** @internal */
export class State extends Shared.Shared<
  Socket.WebSocketLike,
  Pending,
  Exit.Exit<Transport.Reply, SocketClosed | PushTimeout>,
  Buffered
> {
  readonly stateListeners = new Set<(state: Transport.ConnectionState) => void>()
  /** The heartbeat's answer once read, and its fiber's wake-up. */
  heartbeatAnswer: Transport.Reply | undefined = undefined
  heartbeatWake: Deferred.Deferred<void> | undefined = undefined
  /**
   * Runs the (rare) effect of a bad frame from the socket's callback, in the loop's context (its
   * logger, log annotations and clock).
   */
  runInLoop: (effect: Effect.Effect<void>) => void = constVoid
  constructor(
    readonly settings: Settings,
    readonly heartbeatHub: PubSub.PubSub<Heartbeat.HeartbeatStatus>,
    /** Replays the current state to each new subscriber, then every change. */
    readonly stateHub: PubSub.PubSub<Transport.ConnectionState>,
    public currentState: Transport.ConnectionState
  ) {
    super()
  }
}

/** The state of a new transport: not connected. @internal */
export const make = (settings: Settings): Effect.Effect<State> =>
  Effect.gen(function*() {
    const heartbeatHub = yield* PubSub.unbounded<Heartbeat.HeartbeatStatus>()
    const stateHub = yield* PubSub.unbounded<Transport.ConnectionState>({ replay: 1 })
    const currentState = ConnectionState.Closed({ reason: "not connected" })
    PubSub.publishUnsafe(stateHub, currentState)
    return new State(settings, heartbeatHub, stateHub, currentState)
  })

/** Sets the connection state: the listeners first (synchronously, in order), then the subscribers. @internal */
export const setState = (state: State, next: Transport.ConnectionState): Effect.Effect<void> =>
  Effect.sync(() => {
    state.currentState = next
    for (const listener of state.stateListeners) listener(next)
    PubSub.publishUnsafe(state.stateHub, next)
  })

/** One turn of the event loop's I/O (what has arrived is read first); a macrotask elsewhere. @internal */
export const ioTurn: Effect.Effect<void> = Effect.callback<void>((resume) => {
  if (typeof globalThis.setImmediate === "function") {
    const handle = globalThis.setImmediate(() => resume(Effect.void))
    return Effect.sync(() => globalThis.clearImmediate(handle))
  }
  const handle = setTimeout(() => resume(Effect.void), 0)
  return Effect.sync(() => clearTimeout(handle))
})
