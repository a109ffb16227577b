import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Equal from "effect/Equal"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Inspectable from "effect/Inspectable"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as AccessToken from "../AccessToken.js"
import * as Config from "../core/channel/config.js"
import * as Replay from "../core/channel/replay.js"
import * as State from "../core/channel/state.js"
import * as Describe from "../core/describe.js"
import { isJsonObject } from "../core/guards.js"
import * as Topic from "../core/topic.js"
import type * as HttpBroadcast from "../HttpBroadcast.js"
import * as PostgresChanges from "../PostgresChanges.js"
import * as Presence from "../Presence.js"
import type * as Protocol from "../Protocol.js"
import * as Channel from "../RealtimeChannel.js"
import {
  ChannelClosed,
  InvalidArgument,
  joinRejected,
  JoinTimeout,
  type PayloadDecodeError,
  payloadDecodeError,
  PayloadTooLarge,
  type ProtocolError,
  PushRejected,
  type PushTimeout,
  type SocketClosed
} from "../RealtimeError.js"
import type * as Transport from "../Transport.js"
import * as Backoff from "./backoff.js"
import * as ReplayTimer from "./channel/replay.js"
import * as DescribeIssue from "./describe.js"
import { type Inbox, inboxStream, Listener } from "./inbox.js"
import { Waiter } from "./waiter.js"

const metrics = Channel.metrics

/** What a channel needs from its client. @internal */
export interface Deps {
  readonly transport: Transport.Transport
  readonly accessToken: AccessToken.AccessToken
  readonly httpBroadcast: Option.Option<HttpBroadcast.HttpBroadcast>
  readonly rejoin: Schedule.Schedule<unknown, unknown>
  readonly timeout: Duration.Duration
  readonly int8: PostgresChanges.ConvertOptions["int8"]
  /** Starts a fiber of the client (a root fiber: the channel interrupts its own when it leaves). */
  readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>
  /** Runs a synchronous effect with the client's services (its clock and random). */
  readonly runSync: <A>(effect: Effect.Effect<A>) => A
  /** The client's clock, in milliseconds. */
  readonly now: () => number
  /** How long a join must hold before losing it no longer counts as a failure (a heartbeat interval). */
  readonly stableAfter: Duration.Duration
  /** When the socket was last known alive (opened, or answered a heartbeat). */
  readonly aliveAt: () => number
  /** Checks the channel is still the client's, and connects the socket. */
  readonly register: (channel: ChannelImpl) => Effect.Effect<void, ChannelClosed>
  /** A channel became subscribed (+1) or stopped being (-1). */
  readonly activeChanged: (delta: 1 | -1) => void
  /** A channel stopped being subscribed (the socket may close when none is). */
  readonly unregister: (channel: ChannelImpl) => Effect.Effect<void>
}

type JoinFailure = Channel.JoinError

/**
 * A schema's decoder that never throws: a recursive schema overflows the stack on a payload nested
 * deep enough, and that is a payload that does not match, not a defect. The failure is the parse
 * issue, or the text of what was thrown.
 */
const safeDecoder = <A>(schema: Schema.Schema<A, any>) => {
  const decode = Schema.decodeUnknownEither(schema)
  return (u: unknown): Either.Either<A, ParseResult.ParseIssue | string> => {
    try {
      const result = decode(u)
      return result._tag === "Right" ? result as Either.Either<A, never> : Either.left(result.left.issue)
    } catch (cause) {
      return Either.left(
        `the schema could not decode the payload (${
          cause instanceof Error ? Describe.truncate(cause.message, 200) : "a throw"
        })`
      )
    }
  }
}

const occupancyOf = (state: Presence.PresenceState): Channel.Occupancy => {
  let connections = 0
  for (const metas of state.values()) connections += metas.length
  return { keys: state.size, connections }
}

/** An item a typed stream does not emit: a payload that does not match (`error`), or a malformed one. */
class Skipped {
  constructor(readonly log: Effect.Effect<void>, readonly error?: PayloadDecodeError) {}
}

const initialSyncer = Presence.makeSyncer()

const removeFrom = <A>(array: Array<A> | undefined, value: A): void => {
  if (array === undefined) return
  const i = array.indexOf(value)
  if (i >= 0) array.splice(i, 1)
}

/**
 * One wait for the join's outcome (a subscriber's, or a send's that waits for the join): settled
 * once, by the join, a give-up or a leave.
 */
type JoinWaiter = Waiter<void, JoinFailure>

type Failure = State.Failure<JoinFailure>

const toStatus = (status: State.Status, downtimeMillis: number | undefined): Channel.ChannelStatus => {
  switch (status._tag) {
    case "Idle":
      return Channel.ChannelStatus.Idle()
    case "Joining":
      return Channel.ChannelStatus.Joining({ attempt: status.attempt })
    case "Subscribed":
      return Channel.ChannelStatus.Subscribed({
        rejoined: downtimeMillis !== undefined,
        downtime: Duration.millis(downtimeMillis ?? 0)
      })
    case "Errored":
      return Channel.ChannelStatus.Errored({ reason: status.reason })
    case "TimedOut":
      return Channel.ChannelStatus.TimedOut({ timeoutMillis: status.timeoutMillis })
    case "Rejoining":
      return Channel.ChannelStatus.Rejoining({ attempt: status.attempt, delay: Duration.millis(status.delayMillis) })
    case "Closed":
      return Channel.ChannelStatus.Closed({ reason: status.reason })
  }
}

/**
 * What the state machine needs from its channel, on a prototype (a channel holds one small object,
 * not a closure per function: a thousand channels otherwise carry 1.5 MB of closures).
 */
class ChannelEnv implements State.Env {
  constructor(private readonly channel: ChannelImpl) {}
  now(): number {
    return this.channel.deps.now()
  }
  nextDelay(): number | undefined {
    return this.channel.nextDelay()
  }
  resetDelay(): void {
    this.channel.resetDelay()
  }
  makeRef(): string {
    return this.channel.deps.transport.makeRef()
  }
  get maxFailures(): number {
    return this.channel.maxRejoinFailures
  }
  get stableMillis(): number {
    return Duration.toMillis(this.channel.deps.stableAfter)
  }
  patienceMillis(): number {
    return this.channel.patienceMillis
  }
  held(): boolean {
    return this.channel.held
  }
}

/** @internal */
export const configKey = Config.configKey

/** @internal */
export const topicOf = Topic.topicOf

/** What a socket event means for a channel (built once per event by the client, for every channel). */
export const socketFailure = (error: SocketClosed, permanent: boolean): Failure => ({
  error,
  reason: error.message,
  permanent
})

/**
 * A channel. Creating one allocates no fiber, scope or Effect: the status is a field with plain
 * listeners, the backoff and re-track fibers exist only while they run, and the streams and effects
 * are built when asked for. The lifecycle is the state machine of `core/channel/state.ts`: this class
 * carries out its commands (`run`) and feeds it what happens (`dispatch`).
 *
 * @internal
 */
export class ChannelImpl implements Channel.RealtimeChannel {
  readonly [Channel.TypeId]: Channel.TypeId = Channel.TypeId
  readonly topic: string
  readonly key: string

  private machine: State.Machine<JoinFailure>
  // the current join's ref (the machine's, cached for the per-frame check)
  private joinRef: string | null = null
  private subscribers = 0
  // subscribes waiting for their join
  private waiting = 0
  private removed = false
  private currentStatus: Channel.ChannelStatus = Channel.ChannelStatus.Idle()
  private statusInboxes: Array<Inbox<Channel.ChannelStatus>> | undefined
  private joinWaiters: Array<JoinWaiter> | undefined
  // events that arrive while a step's commands run are handled after it, in order
  private dispatching = false
  private readonly queued: Array<State.Event<JoinFailure>> = []
  // a join attempt that wants its token fetched (set by FetchToken; run inline or forked)
  private tokenWanted: number | undefined
  private token: Option.Option<string> = Option.none()
  private forgetJoin: (() => void) | undefined
  private timer: Fiber.RuntimeFiber<void> | undefined
  // a waiting subscribe's deadline (armed at its first failure), and how long it waits at most
  private deadline: Fiber.RuntimeFiber<void> | undefined
  private patience: number | undefined
  private readonly env: State.Env
  private backoff: Backoff.Backoff | undefined
  private lastSystemError: string | undefined
  // pushes waiting for a reply on the current join, failed at once when the server ends it
  private lossWaiters: Array<(reason: string) => void> | undefined
  private ids: Option.Option<ReadonlyArray<ReadonlyArray<number>>> = Option.none()
  private joinPayload: Option.Option<Protocol.JoinPayload> = Option.none()
  private tokenSent: Option.Option<string> = Option.none()
  private tracked: object | undefined
  private syncer = initialSyncer
  private presenceEnabled: boolean
  private readonly bindings: ReadonlyArray<PostgresChanges.Binding>
  private readonly wireBindings: ReadonlyArray<PostgresChanges.WireBinding>
  private readonly bufferSize: number
  private readonly timeout: Duration.Duration
  readonly maxRejoinFailures: number
  private readonly httpFallback: boolean
  // arrays, not Sets: iterating a Set allocates per frame; "*" is looked up once per frame
  private readonly broadcastListeners = new Map<string, Array<Listener<Channel.Broadcast<unknown>>>>()
  private postgresListeners: Array<{ readonly index: number; readonly listener: Listener<unknown> }> | undefined
  private systemListeners: Array<Listener<Channel.SystemMessage>> | undefined
  private presenceListeners:
    | Array<Listener<ReadonlyArray<Presence.PresenceEvent> | Presence.PresenceState>>
    | undefined
  private retrackFiber: Fiber.RuntimeFiber<void> | undefined
  private dropsLogged = 0
  // when the channel last lost a join it held (cleared when it leaves): the next join is a rejoin
  private lostAt: number | undefined
  // where the next rejoin's replay starts: when the socket was last known alive before the loss
  // (kept from the first loss when the join is lost again during a catch-up)
  private replayFrom: number | undefined
  private gapInboxes: Array<Inbox<Channel.Gap>> | undefined
  // after a rejoin with replay: the replayed broadcasts are counted until they end
  private catchUp: ReplayTimer.CatchUp | undefined
  // ids of broadcasts received lately (replay enabled only): a replay never delivers one twice
  private readonly seen: Replay.RecentIds | undefined

  constructor(
    readonly name: string,
    readonly config: Channel.ChannelConfig,
    options: Channel.ChannelOptions,
    readonly deps: Deps,
    key?: string
  ) {
    this.topic = Topic.topicOf(name)
    this.key = key ?? Config.configKey(config)
    this.bindings = config.postgresChanges ?? []
    this.wireBindings = this.bindings.length === 0 ? [] : this.bindings.map(PostgresChanges.toWire)
    this.presenceEnabled = config.presence?.enabled ?? config.presence !== undefined
    this.bufferSize = options.bufferSize ?? 65_536
    this.timeout = options.timeout === undefined ? deps.timeout : Duration.decode(options.timeout)
    this.maxRejoinFailures = options.maxRejoinFailures ?? 10
    this.httpFallback = options.httpFallback ?? true
    this.seen = config.broadcast?.replay === undefined ? undefined : new Replay.RecentIds(1_024)
    this.machine = State.initial(deps.transport.unsafeIsOpen())
    this.env = new ChannelEnv(this)
  }

  /** The next rejoin delay (the schedule is stepped only once a channel needs one). @internal */
  nextDelay(): number | undefined {
    const delay = this.deps.runSync((this.backoff ??= Backoff.make(this.deps.rejoin)).next(undefined))
    return Option.isSome(delay) ? Duration.toMillis(delay.value) : undefined
  }

  /** @internal */
  resetDelay(): void {
    this.backoff?.reset()
  }

  /** @internal */
  get patienceMillis(): number {
    return this.patience ??= this.computePatience()
  }

  /** Someone holds the channel from a subscribe that joined. @internal */
  get held(): boolean {
    return this.subscribers > this.waiting
  }

  // ---------------------------------------------------------------------------
  // status
  // ---------------------------------------------------------------------------

  /** Counts a subscription; the client learns when the channel becomes active or idle. */
  private addSubscriber(): void {
    if (this.subscribers++ === 0) this.deps.activeChanged(1)
  }
  private dropSubscriber(): void {
    if (this.subscribers > 0 && --this.subscribers === 0) this.deps.activeChanged(-1)
  }

  get status(): Effect.Effect<Channel.ChannelStatus> {
    return Effect.sync(() => this.currentStatus)
  }

  /** The current status, then every change; ends after `Closed` once the channel is removed. */
  get statusChanges(): Stream.Stream<Channel.ChannelStatus> {
    return inboxStream<Channel.ChannelStatus>(Number.POSITIVE_INFINITY, (inbox) => {
      inbox.offer(this.currentStatus, true)
      if (this.removed) {
        inbox.end()
        return () => {}
      }
      ;(this.statusInboxes ??= []).push(inbox)
      return () => removeFrom(this.statusInboxes, inbox)
    })
  }

  /** One `Gap` per rejoin; ends once the channel is removed. */
  get gaps(): Stream.Stream<Channel.Gap> {
    return inboxStream<Channel.Gap>(Number.POSITIVE_INFINITY, (inbox) => {
      if (this.removed) {
        inbox.end()
        return () => {}
      }
      ;(this.gapInboxes ??= []).push(inbox)
      return () => removeFrom(this.gapInboxes, inbox)
    })
  }

  /** Subscribed again after `downtimeMillis` without a join: say so, once replay (if any) ended. */
  private rejoined(downtimeMillis: number) {
    this.lostAt = undefined
    this.finishCatchUp("rejoined again before the replay ended")
    const replay = this.config.broadcast?.replay
    this.deps.runFork(
      Effect.logInfo("channel rejoined").pipe(Effect.annotateLogs({ topic: this.topic, downtimeMs: downtimeMillis }))
    )
    if (replay === undefined) return this.emitGap(downtimeMillis, 0, "no replay: broadcasts sent meanwhile are lost")
    const limit = Math.max(1, Math.min(replay.limit ?? Replay.REPLAY_LIMIT, Replay.REPLAY_LIMIT))
    // the server pushes the replayed broadcasts after its reply (live ones may come first): they
    // have ended at the limit, or once none came for a second
    const catchUp: ReplayTimer.CatchUp = {
      downtimeMillis,
      from: this.replayFrom ?? this.deps.now(),
      limit,
      frames: 0,
      replayed: 0,
      timer: undefined
    }
    this.catchUp = catchUp
    this.armSettle(catchUp)
  }

  /** (Re)starts the quiet time after which a catch-up's replay is taken to have ended. */
  private armSettle(catchUp: ReplayTimer.CatchUp) {
    catchUp.timer?.unsafeInterruptAsFork(FiberId.none)
    const timer = this.deps.runFork(
      Effect.sleep(ReplayTimer.REPLAY_SETTLE).pipe(Effect.zipRight(Effect.sync(() => {
        if (catchUp.timer === timer) catchUp.timer = undefined
        if (this.catchUp === catchUp) this.finishCatchUp(undefined)
      })))
    )
    catchUp.timer = timer
  }

  /** The replay of the last rejoin has ended (or was cut short, `cut` says why): emit its gap. */
  private finishCatchUp(cut: string | undefined) {
    const catchUp = this.catchUp
    if (catchUp === undefined) return
    this.catchUp = undefined
    this.replayFrom = undefined
    catchUp.timer?.unsafeInterruptAsFork(FiberId.none)
    catchUp.timer = undefined
    this.emitGap(
      catchUp.downtimeMillis,
      catchUp.replayed,
      cut ?? Replay.gapReason(catchUp, this.bindings.length > 0)
    )
  }

  private emitGap(downtimeMillis: number, replayed: number, reason: string) {
    const gap: Channel.Gap = { downtime: Duration.millis(downtimeMillis), replayed, complete: reason === "", reason }
    const inboxes = this.gapInboxes
    if (inboxes !== undefined) { for (let i = 0; i < inboxes.length; i++) inboxes[i]!.offer(gap, true) }
  }

  private setStatus(status: Channel.ChannelStatus): void {
    if (Equal.equals(status, this.currentStatus)) return
    if (status._tag === "Closed") {
      this.lostAt = undefined
      this.finishCatchUp("the channel closed during the replay")
      this.replayFrom = undefined
    } else if (this.currentStatus._tag === "Subscribed" && status._tag !== "Subscribed") {
      const now = this.deps.now()
      this.lostAt = now
      // lost again during a catch-up: the next replay starts where this one did
      const from = this.catchUp?.from ?? Math.min(now, this.deps.aliveAt())
      this.finishCatchUp("the join was lost again during the replay")
      this.replayFrom = from
    }
    this.currentStatus = status
    const inboxes = this.statusInboxes
    if (inboxes !== undefined) { for (let i = 0; i < inboxes.length; i++) inboxes[i]!.offer(status, true) }
  }

  // ---------------------------------------------------------------------------
  // the state machine's shell
  // ---------------------------------------------------------------------------

  /** Feeds the machine an event and carries out its commands (re-entrant calls are queued). */
  private dispatch(event: State.Event<JoinFailure>): void {
    if (this.dispatching) {
      this.queued.push(event)
      return
    }
    this.dispatching = true
    try {
      let next: State.Event<JoinFailure> | undefined = event
      while (next !== undefined) {
        const { commands, machine } = State.step(this.machine, next, this.env)
        this.machine = machine
        this.joinRef = State.joinRefOf(machine.state) ?? null
        for (let i = 0; i < commands.length; i++) this.run(commands[i]!)
        next = this.queued.shift()
      }
    } finally {
      this.dispatching = false
    }
  }

  /** Dispatches from a callback (no fiber at hand): a token fetch it wants runs in a fiber of its own. */
  private dispatchSync(event: State.Event<JoinFailure>): void {
    this.dispatch(event)
    const job = this.takeTokenJob()
    if (job !== undefined) this.deps.runFork(job)
  }

  /** Dispatches from a fiber: a token fetch it wants runs in that fiber. */
  private dispatchIn(event: State.Event<JoinFailure>): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.dispatch(event)
      return this.takeTokenJob() ?? Effect.void
    })
  }

  /** The token fetch the last step asked for (never a token-less join while a fetch is pending). */
  private takeTokenJob(): Effect.Effect<void> | undefined {
    const attempt = this.tokenWanted
    if (attempt === undefined) return undefined
    this.tokenWanted = undefined
    return Effect.flatMap(this.fetchToken, (token) =>
      Effect.sync(() => {
        this.token = token
        this.dispatchSync({ _tag: "TokenReady", attempt })
      }))
  }

  private run(command: State.Command<JoinFailure>): void {
    switch (command._tag) {
      case "Status":
        return this.setStatus(
          toStatus(command.status, this.lostAt === undefined ? undefined : this.deps.now() - this.lostAt)
        )
      case "FetchToken":
        this.tokenWanted = command.attempt
        return
      case "WriteJoin":
        if (command.attempt > 0) metrics.rejoins.unsafeUpdate(1, [])
        return this.writeJoin(command.joinRef)
      case "WriteLeave": {
        this.forgetJoin?.()
        this.forgetJoin = undefined
        this.deps.transport.unsafePush({
          joinRef: command.joinRef,
          ref: this.deps.transport.makeRef(),
          topic: this.topic,
          event: "phx_leave",
          payload: {}
        })
        return
      }
      case "ArmTimer": {
        this.cancelTimer()
        const fiber = this.deps.runFork(
          Effect.sleep(Duration.millis(command.delayMillis)).pipe(
            Effect.zipRight(Effect.suspend(() => {
              if (this.timer === fiber) this.timer = undefined
              return this.dispatchIn({ _tag: "TimerFired" })
            }))
          )
        )
        this.timer = fiber
        return
      }
      case "CancelTimer":
        return this.cancelTimer()
      case "ArmDeadline": {
        this.cancelDeadline()
        const patience = this.patienceMillis
        const fiber = this.deps.runFork(
          Effect.sleep(Duration.millis(command.delayMillis)).pipe(
            Effect.zipRight(Effect.suspend(() => {
              if (this.deadline === fiber) this.deadline = undefined
              return this.dispatchIn({
                _tag: "DeadlineFired",
                failure: {
                  error: new JoinTimeout({ topic: this.topic, timeoutMillis: patience }),
                  reason: `no join within ${patience} ms`,
                  permanent: false,
                  timeoutMillis: patience
                }
              })
            }))
          )
        )
        this.deadline = fiber
        return
      }
      case "CancelDeadline":
        return this.cancelDeadline()
      case "Settle":
        return this.settle(command.outcome)
      case "Joined": {
        // the server forgot this client's presence with the old join: track it again
        if (this.tracked !== undefined) this.retrack(this.tracked)
        if (this.lostAt !== undefined) this.rejoined(this.deps.now() - this.lostAt)
        return
      }
    }
  }

  private cancelDeadline() {
    const deadline = this.deadline
    if (deadline === undefined) return
    this.deadline = undefined
    deadline.unsafeInterruptAsFork(FiberId.none)
  }

  /**
   * The longest a subscribe waits: `maxRejoinFailures` join timeouts and the rejoin schedule's
   * first `maxRejoinFailures - 1` delays (168 s with the defaults).
   */
  private computePatience(): number {
    const schedule = Backoff.make(this.deps.rejoin)
    let total = this.maxRejoinFailures * Duration.toMillis(this.joinTimeout)
    for (let i = 1; i < this.maxRejoinFailures; i++) {
      const delay = this.deps.runSync(schedule.next(undefined))
      if (Option.isNone(delay)) break
      total += Duration.toMillis(delay.value)
    }
    return total
  }

  private cancelTimer() {
    const timer = this.timer
    if (timer === undefined) return
    this.timer = undefined
    timer.unsafeInterruptAsFork(FiberId.none)
  }

  private settle(outcome: State.Outcome<JoinFailure>) {
    const waiters = this.joinWaiters
    if (waiters === undefined || waiters.length === 0) return
    this.joinWaiters = undefined
    // errors are built only when someone waits (PERFORMANCE.md: a Schema error is costly)
    const exit: Exit.Exit<void, JoinFailure> = outcome._tag === "Joined"
      ? Exit.void
      : outcome._tag === "Failed"
      ? Exit.fail(outcome.failure.error)
      : Exit.fail(new ChannelClosed({ topic: this.topic, reason: outcome.reason }))
    for (let i = 0; i < waiters.length; i++) waiters[i]!.settle(exit)
  }

  /** Waits for the join's outcome; `subscribe` also asks for the join. */
  private awaitJoin(subscribe: boolean): Effect.Effect<void, JoinFailure> {
    return Effect.suspend(() => {
      if (this.machine.state._tag === "Joined") return Effect.void
      const waiter: JoinWaiter = new Waiter()
      ;(this.joinWaiters ??= []).push(waiter)
      const wait = waiter.await(() => removeFrom(this.joinWaiters, waiter))
      return subscribe ? Effect.zipRight(this.dispatchIn({ _tag: "Subscribe" }), wait) : wait
    })
  }

  private writeJoin(joinRef: string) {
    const token = this.token
    const payload = this.buildJoinPayload(token)
    this.lastSystemError = undefined
    this.tokenSent = token
    this.joinPayload = Option.some(
      Option.isSome(token) ? { ...payload, access_token: "<redacted>" } as Protocol.JoinPayload : payload
    )
    const timeout = this.joinTimeout
    this.forgetJoin = this.deps.transport.unsafeRequest(
      { joinRef, ref: joinRef, topic: this.topic, event: "phx_join", payload },
      timeout,
      (exit) => {
        this.forgetJoin = undefined
        this.onJoinReply(joinRef, exit, Duration.toMillis(timeout))
      }
    )
  }

  private onJoinReply(
    joinRef: string,
    exit: Exit.Exit<Transport.Reply, SocketClosed | PushTimeout | ProtocolError>,
    timeoutMillis: number
  ) {
    if (Exit.isFailure(exit)) {
      const error = Cause.failureOption(exit.cause)
      if (Option.isNone(error)) return
      switch (error.value._tag) {
        // the socket ended first: the transport's state change follows, and says why
        case "SocketClosed":
          return
        case "PushTimeout":
          return this.dispatchSync({
            _tag: "JoinFailed",
            joinRef,
            failure: {
              error: new JoinTimeout({ topic: this.topic, timeoutMillis }),
              reason: `no reply to the join within ${timeoutMillis} ms`,
              permanent: false,
              timeoutMillis
            }
          })
        case "ProtocolError":
          return this.dispatchSync({
            _tag: "JoinFailed",
            joinRef,
            failure: { error: error.value, reason: error.value.message, permanent: true }
          })
      }
    }
    const reply = exit.value
    if (reply.status !== "ok") {
      const rejected = joinRejected(this.topic, reply.response)
      return this.dispatchSync({
        _tag: "JoinFailed",
        joinRef,
        failure: {
          error: rejected,
          reason: rejected.message,
          // an expired token on a subscribe's own join came fresh from the token source: retrying
          // will not help; on a rejoin it may be a stale one, and the next attempt refreshes it
          permanent: Config.isPermanent(rejected) || (rejected._tag === "TokenExpired" && this.machine.pending)
        }
      })
    }
    const serverBindings = (reply.response as { readonly postgres_changes?: unknown } | null)?.postgres_changes
    const matched = PostgresChanges.matchBindingIds(this.wireBindings, serverBindings)
    if (Either.isLeft(matched)) {
      this.deps.transport.unsafePush({
        joinRef,
        ref: this.deps.transport.makeRef(),
        topic: this.topic,
        event: "phx_leave",
        payload: {}
      })
      return this.dispatchSync({
        _tag: "JoinFailed",
        joinRef,
        failure: { error: matched.left, reason: matched.left.message, permanent: true }
      })
    }
    this.ids = Option.some(matched.right)
    this.dispatchSync({ _tag: "JoinOk", joinRef })
  }

  /** The server ended the current join. */
  private lost(joinRef: string, reason: string) {
    this.lastSystemError = undefined
    // the server closes a channel whose tracked meta is too large: tracking it again after the
    // rejoin would close it again, forever
    if (reason.includes(Config.TRACK_TOO_LARGE)) this.tracked = undefined
    const waiters = this.lossWaiters
    this.lossWaiters = undefined
    if (waiters !== undefined) { for (const fail of waiters) fail(reason) }
    this.deps.runFork(
      Effect.logWarning("channel lost its join").pipe(Effect.annotateLogs({ topic: this.topic, reason }))
    )
    this.dispatchSync({
      _tag: "Lost",
      joinRef,
      failure: { error: new ChannelClosed({ topic: this.topic, reason }), reason, permanent: false }
    })
  }

  /** @internal called by the client on every change of the connection (`down`: not open any more) */
  onSocket(down: Failure | undefined): void {
    if (this.removed) return
    this.dispatchSync(down === undefined ? { _tag: "SocketOpen" } : { _tag: "SocketDown", failure: down })
  }

  // ---------------------------------------------------------------------------
  // inbound: synchronous, called by the transport's read loop
  // ---------------------------------------------------------------------------

  readonly onMessage = (message: Protocol.Message): void => {
    if (message.joinRef !== null && message.joinRef !== this.joinRef) {
      metrics.stale.unsafeUpdate(1, [])
      return
    }
    switch (message.event) {
      case "broadcast":
        return this.onBroadcast(message.payload)
      case "postgres_changes":
        return this.onPostgresChanges(message.payload)
      case "presence_state":
        return this.onPresence(message.payload, true)
      case "presence_diff":
        return this.onPresence(message.payload, false)
      case "system":
        return this.onSystem(message.payload)
      case "phx_close":
      case "phx_error": {
        const joinRef = this.joinRef
        if (joinRef === null) return
        if (message.ref !== null && message.ref !== joinRef) return
        if (this.machine.state._tag === "Joining") {
          // the join's process ended before it replied: a failed attempt
          const reason = this.lastSystemError ?? `the server ended the join (${message.event})`
          this.forgetJoin?.()
          this.forgetJoin = undefined
          return this.dispatchSync({
            _tag: "JoinFailed",
            joinRef,
            failure: { error: new ChannelClosed({ topic: this.topic, reason }), reason, permanent: false }
          })
        }
        return this.lost(
          joinRef,
          message.event === "phx_close"
            ? this.lastSystemError ?? "closed by the server"
            : this.lastSystemError ?? "channel crashed on the server"
        )
      }
    }
  }

  private readonly onDropped = (count: number) => {
    metrics.dropped.unsafeUpdate(count, [])
    const before = this.dropsLogged
    this.dropsLogged += count
    if (before === 0 || Math.floor(before / 1000) !== Math.floor(this.dropsLogged / 1000)) {
      this.deps.runFork(
        Effect.logWarning("a stream's buffer is full: dropping events").pipe(
          Effect.annotateLogs({ topic: this.topic, capacity: this.bufferSize, dropped: this.dropsLogged })
        )
      )
    }
  }

  // One `Broadcast` per frame, shared by every stream that wants it (they are read-only); the event
  // is lower-cased only when some stream listens to a specific event.
  private onBroadcast(payload: unknown) {
    if (typeof payload !== "object" || payload === null) return
    const p = payload as Protocol.BroadcastPayload
    const event = p.event
    if (typeof event !== "string") return
    if (this.seen !== undefined && !this.admitReplayable(p.meta)) return
    const listeners = this.broadcastListeners
    const all = listeners.get("*")
    const some = listeners.size > (all === undefined ? 0 : 1) ? listeners.get(event.toLowerCase()) : undefined
    if (all === undefined && some === undefined) return
    const item: Channel.Broadcast<unknown> = { event, payload: p.payload, meta: p.meta }
    if (all !== undefined) { for (let i = 0; i < all.length; i++) all[i]!.unsafeOffer(item) }
    if (some !== undefined) { for (let i = 0; i < some.length; i++) some[i]!.unsafeOffer(item) }
  }

  /** Replay bookkeeping (replay enabled only): counts replayed broadcasts, refuses a second copy. */
  private admitReplayable(meta: unknown): boolean {
    const m = typeof meta === "object" && meta !== null
      ? meta as { readonly replayed?: unknown; readonly id?: unknown }
      : {}
    const catchUp = m.replayed === true ? this.catchUp : undefined
    if (catchUp !== undefined) catchUp.frames++
    const fresh = typeof m.id !== "string" || this.seen!.add(m.id)
    if (!fresh) metrics.duplicates.unsafeUpdate(1, [])
    else if (catchUp !== undefined) catchUp.replayed++
    if (catchUp !== undefined) {
      if (catchUp.frames >= catchUp.limit) this.finishCatchUp(undefined)
      else this.armSettle(catchUp)
    }
    return fresh
  }

  private onPostgresChanges(payload: unknown) {
    const listeners = this.postgresListeners
    if (listeners === undefined || listeners.length === 0 || Option.isNone(this.ids)) return
    const p = payload as { readonly ids?: unknown; readonly data?: { readonly type?: unknown } }
    if (!Array.isArray(p?.ids) || typeof p.data !== "object" || p.data === null) return
    const type = typeof p.data.type === "string" ? p.data.type.toUpperCase() : ""
    const ids = this.ids.value
    for (const listener of listeners) {
      if (listener.index >= 0) {
        const binding = this.wireBindings[listener.index]!
        if (binding.event !== "*" && binding.event.toUpperCase() !== type) continue
        const mine = ids[listener.index]!
        if (!p.ids.some((id) => mine.includes(id as number))) continue
      }
      listener.listener.unsafeOffer(payload)
    }
  }

  private onSystem(payload: unknown) {
    const system = Config.decodeSystem(payload)
    if (system === undefined) return
    if (system.extension === "system" && system.status === "error") this.lastSystemError = system.message
    const listeners = this.systemListeners
    if (listeners !== undefined) { for (const listener of listeners) listener.unsafeOffer(system) }
  }

  private onPresence(payload: unknown, isState: boolean) {
    const joinRef = this.joinRef
    if (joinRef === null) return
    let result: Presence.SyncerResult
    if (isState) {
      if (!Presence.isRawState(payload)) return
      result = Presence.receiveState(this.syncer, joinRef, payload)
    } else {
      if (!Presence.isRawDiff(payload)) return
      result = Presence.receiveDiff(this.syncer, joinRef, payload)
    }
    this.syncer = result.syncer
    const listeners = this.presenceListeners
    if (!result.synced || listeners === undefined) return
    for (const listener of listeners) {
      if (result.events.length > 0) listener.unsafeOffer(result.events)
      listener.unsafeOffer(result.syncer.state)
    }
  }

  /** @internal called by the client when the token changed */
  onToken(token: Option.Option<string>): Effect.Effect<void> {
    return Effect.suspend(() => {
      const joinRef = this.joinRef
      if (joinRef === null || this.currentStatus._tag !== "Subscribed") return Effect.void
      if (Option.getEquivalence<string>((a, b) => a === b)(token, this.tokenSent)) return Effect.void
      this.tokenSent = token
      // the server never replies to access_token: don't wait for one
      return this.deps.transport.push({
        joinRef,
        ref: this.deps.transport.makeRef(),
        topic: this.topic,
        event: "access_token",
        payload: { access_token: Option.getOrNull(token) }
      }).pipe(Effect.ignore)
    })
  }

  // ---------------------------------------------------------------------------
  // join / leave
  // ---------------------------------------------------------------------------

  private buildJoinPayload(token: Option.Option<string>): Protocol.JoinPayload {
    const replay = this.config.broadcast?.replay
    return Config.joinPayload(this.config, {
      wireBindings: this.wireBindings,
      presenceEnabled: this.presenceEnabled,
      token: Option.getOrUndefined(token),
      replaySince: replay === undefined || this.replayFrom === undefined
        ? replay?.since
        : Replay.since(replay.since, this.replayFrom)
    })
  }

  private get joinTimeout(): Duration.Duration {
    const options = this.config.postgresChangesOptions
    if (options?.wait && this.bindings.length > 0) {
      return Duration.max(this.timeout, Duration.millis((options.timeout ?? 15_000) + 10_000))
    }
    return this.timeout
  }

  private get fetchToken(): Effect.Effect<Option.Option<string>> {
    return Effect.catchAll(
      this.deps.accessToken.refresh,
      (error) =>
        Effect.logWarning("access token source failed; joining with the last known token").pipe(
          Effect.annotateLogs({ topic: this.topic, error: error.message }),
          Effect.zipRight(this.deps.accessToken.current)
        )
    )
  }

  private retrack(meta: object) {
    const previous = this.retrackFiber
    const track = this.pushPresence({ type: "presence", event: "track", payload: meta }, this.timeout).pipe(
      Effect.catchAll((error) =>
        Effect.logWarning("could not track presence again after the rejoin").pipe(
          Effect.annotateLogs({ topic: this.topic, error: error.message })
        )
      )
    )
    const fiber = this.deps.runFork(previous === undefined ? track : Effect.zipRight(Fiber.interrupt(previous), track))
    this.retrackFiber = fiber
    fiber.addObserver(() => {
      if (this.retrackFiber === fiber) this.retrackFiber = undefined
    })
  }

  // The bookkeeping is uninterruptible; the wait is not (a caller may give up on it).
  get subscribe(): Effect.Effect<void, Channel.JoinError, Scope.Scope> {
    return Effect.withSpan(this.subscribeUntraced, "RealtimeChannel.subscribe", this.spanOptions)
  }

  private get spanOptions() {
    return { attributes: { topic: this.topic }, kind: "client" as const }
  }

  private get subscribeUntraced(): Effect.Effect<void, Channel.JoinError, Scope.Scope> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        if (this.removed) {
          return Effect.fail(new ChannelClosed({ topic: this.topic, reason: "the channel was removed" }))
        }
        return Effect.flatMap(this.deps.register(this), () => {
          this.addSubscriber()
          this.waiting++
          return Effect.matchCauseEffect(restore(this.awaitJoin(true)), {
            onFailure: (cause) => {
              this.waiting--
              this.dropSubscriber()
              if (this.subscribers > 0) {
                // the last waiting one gave up: the others' channel is not its to give up on
                return this.waiting > 0
                  ? Effect.failCause(cause)
                  : Effect.zipRight(this.dispatchIn({ _tag: "NoneWaits" }), Effect.failCause(cause))
              }
              // no one is left: leave (a join that may still land is left on the server)
              return Effect.zipRight(this.leave("the join failed"), Effect.failCause(cause))
            },
            // the scope's own finalizer list: `Effect.addFinalizer` would also diff the fiber's refs
            onSuccess: () => {
              this.waiting--
              return Effect.flatMap(Effect.scope, (scope) => Scope.addFinalizer(scope, this.release))
            }
          })
        })
      })
    )
  }

  /** A subscription ended: the last one leaves. */
  private get release(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.removed) return Effect.void
      this.dropSubscriber()
      return this.subscribers > 0 ? Effect.void : this.leave("left")
    })
  }

  /** Leaves the topic (if joined) and ends the channel's join: written now, never awaited. */
  leave(reason: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      const retrack = this.retrackFiber
      this.retrackFiber = undefined
      this.dispatch({ _tag: "Leave", reason })
      this.forgetJoin?.()
      this.forgetJoin = undefined
      this.tokenWanted = undefined
      this.tracked = undefined
      this.ids = Option.none()
      this.clearPresence()
      const unregister = this.deps.unregister(this)
      return retrack === undefined ? unregister : Effect.zipRight(Fiber.interrupt(retrack), unregister)
    }).pipe(Effect.uninterruptible)
  }

  /** The channel left: whoever was present leaves (a `Leave` per key, then the empty state). */
  private clearPresence() {
    const state = this.syncer.state
    this.syncer = initialSyncer
    const listeners = this.presenceListeners
    if (state.size === 0 || listeners === undefined || listeners.length === 0) return
    const events: Array<Presence.PresenceEvent> = []
    for (const [key, metas] of state) events.push(Presence.PresenceEvent.Leave({ key, current: [], left: metas }))
    for (const listener of listeners) {
      listener.unsafeOffer(events)
      listener.unsafeOffer(initialSyncer.state)
    }
  }

  /** Removed from the client: leave and end every stream. */
  remove(reason: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.removed = true
      if (this.subscribers > 0) {
        this.subscribers = 0
        this.deps.activeChanged(-1)
      }
      return this.leave(reason).pipe(Effect.zipRight(Effect.sync(() => this.endStreams())))
    })
  }

  private endStreams() {
    for (const set of this.broadcastListeners.values()) for (const l of set) l.end()
    for (const l of this.postgresListeners ?? []) l.listener.end()
    for (const l of this.systemListeners ?? []) l.end()
    for (const l of this.presenceListeners ?? []) l.end()
    for (const inbox of this.statusInboxes ?? []) inbox.end()
    for (const inbox of this.gapInboxes ?? []) inbox.end()
  }

  // ---------------------------------------------------------------------------
  // streams
  // ---------------------------------------------------------------------------
  //
  // Decoding is a synchronous `mapChunks` (what fails is logged from a fiber of its own): an Effect
  // per chunk that holds the chunk makes Effect 3's stream runner keep every chunk since the last
  // young-generation GC alive and promote it (bench/gc-survivors.ts).

  /** A stream of what `add` connects a listener to (for as long as the stream runs). */
  private listen<A>(add: (listener: Listener<A>) => () => void): Stream.Stream<A> {
    return inboxStream<A>(this.bufferSize, (inbox) => {
      if (this.removed) {
        inbox.end()
        return () => {}
      }
      return add(new Listener(inbox, this.onDropped))
    })
  }

  /** A payload that does not match: counted; logged when skipped. The issue is described bounded. */
  private mismatch(event: string, issue: ParseResult.ParseIssue | string): Skipped {
    metrics.decodeFailures.unsafeUpdate(1, [])
    const error = payloadDecodeError(this.topic, event, issue)
    return new Skipped(
      Effect.logWarning("payload does not match the schema: skipped").pipe(
        Effect.annotateLogs({ topic: this.topic, event: error.event, error: error.detail })
      ),
      error
    )
  }

  /**
   * `decode` applied to every item, as one synchronous `mapChunks`. A `Skipped` item is left out and
   * logged from a fiber of its own; with `onDecodeError: "fail"`, a payload that does not match ends
   * the stream with its `PayloadDecodeError` once what came before it is emitted.
   */
  private decodeStream<A, B>(
    stream: Stream.Stream<A>,
    options: Channel.DecodeOptions | undefined,
    decode: (item: A) => B | Skipped
  ): Stream.Stream<B, PayloadDecodeError> {
    const fail = options?.onDecodeError === "fail"
    const decoded = Stream.mapChunks(stream, (chunk) => {
      const out: Array<any> = []
      let logs: Array<Effect.Effect<void>> | undefined
      for (const item of chunk) {
        const result = decode(item)
        if (!(result instanceof Skipped)) {
          out.push(fail ? Exit.succeed(result) : result)
        } else if (fail && result.error !== undefined) {
          out.push(Exit.fail(Option.some(result.error)))
          break
        } else {
          ;(logs ??= []).push(result.log)
        }
      }
      if (logs !== undefined) this.deps.runFork(Effect.all(logs, { discard: true }))
      return Chunk.unsafeFromArray(out)
    })
    return fail
      ? Stream.flattenExitOption(decoded as Stream.Stream<Exit.Exit<B, Option.Option<PayloadDecodeError>>>)
      : decoded as Stream.Stream<B>
  }

  // the overloads are `Channel.RealtimeChannel`'s (the error type follows `onDecodeError`)
  broadcast(
    eventOrDefinition: string | Channel.BroadcastEvent<any, any>,
    schemaOrOptions?: Schema.Schema<any, any> | Channel.DecodeOptions,
    maybeOptions?: Channel.DecodeOptions
  ): any {
    const named = typeof eventOrDefinition === "string"
    const event = named ? eventOrDefinition : eventOrDefinition.event
    const schema = named ? schemaOrOptions as Schema.Schema<any, any> | undefined : eventOrDefinition.schema
    const options = named ? maybeOptions : schemaOrOptions as Channel.DecodeOptions | undefined
    const key = event === "*" ? "*" : event.toLowerCase()
    const stream = this.listen<Channel.Broadcast<unknown>>((listener) => {
      const listeners = this.broadcastListeners.get(key)
      if (listeners === undefined) this.broadcastListeners.set(key, [listener])
      else listeners.push(listener)
      return () => {
        const listeners = this.broadcastListeners.get(key)
        removeFrom(listeners, listener)
        if (listeners !== undefined && listeners.length === 0) this.broadcastListeners.delete(key)
      }
    })
    // the inbox already holds `Broadcast`s: no per-element work without a schema
    if (schema === undefined) return stream
    const decode = safeDecoder(schema)
    return this.decodeStream(stream, options, (b): Channel.Broadcast<unknown> | Skipped => {
      const decoded = decode(b.payload)
      return decoded._tag === "Right"
        ? { event: b.event, payload: decoded.right, meta: b.meta }
        : this.mismatch(b.event, decoded.left)
    })
  }

  get system(): Stream.Stream<Channel.SystemMessage> {
    return this.listen<Channel.SystemMessage>((listener) => {
      ;(this.systemListeners ??= []).push(listener)
      return () => removeFrom(this.systemListeners, listener)
    })
  }

  postgresChanges(
    binding?: PostgresChanges.Binding,
    schemaOrOptions?: Schema.Schema<any, any> | Channel.DecodeOptions,
    decodeOptions?: Channel.DecodeOptions
  ): any {
    const schema = Schema.isSchema(schemaOrOptions) ? schemaOrOptions : undefined
    const options = Schema.isSchema(schemaOrOptions) ? decodeOptions : schemaOrOptions
    // a binding typed by generated types: int8 and numeric as the numbers the types promise, exactly
    const generated = schema === undefined && PostgresChanges.isTypedBinding(binding)
    let index = -1
    if (binding !== undefined) {
      const wanted = JSON.stringify(Config.canonical(PostgresChanges.toWire(binding)))
      index = this.wireBindings.findIndex((b) => JSON.stringify(Config.canonical(b)) === wanted)
      if (index < 0) {
        return Stream.fail(
          new InvalidArgument({
            detail: `${this.topic}: the binding ${wanted} is not in the channel's config.postgresChanges (${
              JSON.stringify(this.wireBindings)
            }); bindings are sent with the join, so declare them in the channel config`
          })
        )
      }
    }
    const decodeRow = schema === undefined ? undefined : safeDecoder(schema)
    const decodeOld = schema === undefined ? undefined : safeDecoder(Schema.partial(schema))
    const int8 = this.deps.int8
    const stream = this.listen<unknown>((listener) => {
      const entry = { index, listener }
      ;(this.postgresListeners ??= []).push(entry)
      return () => removeFrom(this.postgresListeners, entry)
    })
    return this.decodeStream(stream, options, (payload): PostgresChanges.Change<any> | Skipped => {
      const data = (payload as { readonly data: unknown }).data
      const change = PostgresChanges.convertChange(data, generated ? undefined : { int8 })
      if (Either.isLeft(change)) {
        return new Skipped(
          Effect.logWarning("malformed postgres_changes payload: skipped").pipe(
            Effect.annotateLogs({ topic: this.topic, error: change.left.message })
          )
        )
      }
      if (generated) {
        const typed = PostgresChanges.toGeneratedTypes(data, change.right)
        return Either.isRight(typed) ? typed.right : this.mismatch(`postgres_changes ${change.right.table}`, typed.left)
      }
      if (decodeRow === undefined) return change.right
      const c = change.right
      const row = c.eventType === "DELETE" ? Either.right({}) : decodeRow(c.new)
      if (Either.isLeft(row)) return this.mismatch(`postgres_changes ${c.table}`, row.left)
      const old = c.eventType === "INSERT" ? Either.right({}) : decodeOld!(c.old)
      if (Either.isLeft(old)) return this.mismatch(`postgres_changes ${c.table}`, old.left)
      return { ...c, new: row.right, old: old.right } as PostgresChanges.Change<any>
    })
  }

  presence<A extends object, I>(schema: Schema.Schema<A, I>): Channel.PresenceView<A>
  presence(): Channel.PresenceView<{ readonly [field: string]: unknown }>
  presence(schema?: Schema.Schema<any, any>): Channel.PresenceView<any> {
    if (this.currentStatus._tag === "Idle") this.presenceEnabled = true
    const decode = schema === undefined ? undefined : safeDecoder(schema)
    const convertMeta = (meta: Presence.RawMeta): Presence.PresenceMeta<any> | undefined => {
      const publicMeta = Presence.toPublicMeta(meta)
      if (decode === undefined) return publicMeta
      const { presence_ref, ...fields } = publicMeta
      const decoded = decode(fields)
      return decoded._tag === "Right" ? { ...decoded.right, presence_ref } : undefined
    }
    const convertMetas = (metas: ReadonlyArray<Presence.RawMeta>) => {
      const out: Array<Presence.PresenceMeta<any>> = []
      for (const meta of metas) {
        const converted = convertMeta(meta)
        if (converted !== undefined) out.push(converted)
        else metrics.decodeFailures.unsafeUpdate(1, [])
      }
      return out
    }
    const snapshot = (state: Presence.PresenceState): Channel.PresenceSnapshot<any> => {
      const out = new Map<string, ReadonlyArray<Presence.PresenceMeta<any>>>()
      for (const [key, metas] of state) {
        const converted = convertMetas(metas)
        if (converted.length > 0) out.set(key, converted)
      }
      return out
    }
    const convertEvent = (event: Presence.PresenceEvent): Channel.PresenceChange<any> => {
      const current = convertMetas(event.current)
      switch (event._tag) {
        case "Join":
          return Presence.PresenceEvent.Join({ key: event.key, current, joined: convertMetas(event.joined) })
        case "Leave":
          return Presence.PresenceEvent.Leave({ key: event.key, current, left: convertMetas(event.left) })
        case "Update":
          return Presence.PresenceEvent.Update({
            key: event.key,
            current,
            previous: convertMetas(event.previous),
            updated: convertMetas(event.updated)
          })
      }
    }
    const raw = this.listen<ReadonlyArray<Presence.PresenceEvent> | Presence.PresenceState>((listener) => {
      ;(this.presenceListeners ??= []).push(listener)
      return () => removeFrom(this.presenceListeners, listener)
    })
    // the current state, then every new one: seeded as the listener registers, so that a state that
    // arrives while the consumer handles the first is not missed
    const states = this.listen<ReadonlyArray<Presence.PresenceEvent> | Presence.PresenceState>((listener) => {
      listener.inbox.offer(this.syncer.state, true)
      ;(this.presenceListeners ??= []).push(listener)
      return () => removeFrom(this.presenceListeners, listener)
    }).pipe(Stream.filter((item): item is Presence.PresenceState => item instanceof Map))
    const encode = schema === undefined ? undefined : Schema.encodeUnknown(schema)
    return {
      occupancy: Effect.sync(() => occupancyOf(this.syncer.state)),
      occupancyChanges: states.pipe(
        Stream.map(occupancyOf),
        Stream.changesWith((a, b) => a.keys === b.keys && a.connections === b.connections)
      ),
      track: (meta, options) =>
        encode === undefined ? this.track(meta, options) : encode(meta).pipe(
          Effect.mapError((error) =>
            new InvalidArgument({
              detail: `track: the presence meta does not match its schema: ${DescribeIssue.describeIssue(error.issue)}`
            })
          ),
          Effect.flatMap((encoded) => this.track(encoded as object, options))
        ),
      state: Effect.sync(() => snapshot(this.syncer.state)),
      changes: Stream.map(states, snapshot),
      events: raw.pipe(
        Stream.mapConcat((item): ReadonlyArray<Channel.PresenceChange<any>> =>
          item instanceof Map
            ? [{ _tag: "Sync", state: snapshot(item as Presence.PresenceState) }]
            : (item as ReadonlyArray<Presence.PresenceEvent>).map(convertEvent)
        )
      )
    }
  }

  // ---------------------------------------------------------------------------
  // outbound
  // ---------------------------------------------------------------------------

  /** The join ref to push with: now when joined, else once joined (within `timeout`). */
  private joinedRef(timeout: Duration.Duration): Effect.Effect<string, ChannelClosed> {
    if (this.machine.state._tag === "Joined" && this.joinRef !== null) return Effect.succeed(this.joinRef)
    if (this.removed || this.subscribers === 0) {
      return Effect.fail(
        new ChannelClosed({ topic: this.topic, reason: "not subscribed: call subscribe before sending" })
      )
    }
    return this.awaitJoin(false).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new ChannelClosed({ topic: this.topic, reason: `not joined within ${Duration.toMillis(timeout)} ms` })
      }),
      Effect.catchIf(
        (error): error is Exclude<JoinFailure, ChannelClosed> => error._tag !== "ChannelClosed",
        (error) => Effect.fail(new ChannelClosed({ topic: this.topic, reason: error.message }))
      ),
      Effect.flatMap(() =>
        this.joinRef !== null
          ? Effect.succeed(this.joinRef)
          : Effect.fail(new ChannelClosed({ topic: this.topic, reason: "the channel closed before it joined" }))
      )
    )
  }

  send<A, I>(event: Channel.BroadcastEvent<A, I>, payload: A, options?: Channel.SendOptions): Effect.Effect<
    void,
    Channel.SendError
  >
  send(event: string, payload: unknown, options?: Channel.SendOptions): Effect.Effect<void, Channel.SendError>
  send(
    eventOrDefinition: string | Channel.BroadcastEvent<any, any>,
    value: unknown,
    options?: Channel.SendOptions
  ): Effect.Effect<void, Channel.SendError> {
    if (typeof eventOrDefinition === "string") {
      return Effect.suspend(() => this.sendPayload(eventOrDefinition, value, options))
    }
    const event = eventOrDefinition.event
    return Schema.encodeUnknown(eventOrDefinition.schema)(value).pipe(
      Effect.mapError((error) =>
        new InvalidArgument({
          detail: `payload of '${event}' does not match its schema: ${DescribeIssue.describeIssue(error.issue)}`
        })
      ),
      Effect.flatMap((payload) => this.sendPayload(event, payload, options))
    )
  }

  private sendPayload(
    event: string,
    payload: unknown,
    options: Channel.SendOptions | undefined
  ): Effect.Effect<void, Channel.SendError> {
    const timeout = options?.timeout === undefined ? this.timeout : Duration.decode(options.timeout)
    const persist = options?.persist
    if (persist !== undefined && this.deps.transport.vsn === "1.0.0") {
      return Effect.fail(new InvalidArgument({ detail: "persist needs protocol vsn 2.0.0" }))
    }
    const joinRef = this.currentStatus._tag === "Subscribed" ? this.joinRef : null
    if (joinRef !== null) return this.pushBroadcast(joinRef, event, payload, persist, timeout)
    if (this.httpFallback && Option.isSome(this.deps.httpBroadcast)) {
      const http = this.deps.httpBroadcast.value
      const topic = Topic.subTopicOf(this.name)
      const isPrivate = this.config.private ?? false
      // the batch endpoint, as realtime-js: every server version has it (the single-event one only
      // from v2.97.0); bytes and `persist` need the single-event one
      if (persist === undefined && isJsonObject(payload)) {
        return http.sendBatch([{ topic, event, payload, private: isPrivate }], { timeout })
      }
      return http.send(topic, event, payload, { private: isPrivate, persist, timeout })
    }
    return Effect.flatMap(
      this.joinedRef(timeout),
      (joinRef) => this.pushBroadcast(joinRef, event, payload, persist, timeout)
    )
  }

  private pushBroadcast(
    joinRef: string,
    event: string,
    payload: unknown,
    persist: Channel.SendOptions["persist"],
    timeout: Duration.Duration
  ): Effect.Effect<void, Channel.SendError> {
    const body: Record<string, unknown> = persist === undefined
      ? { type: "broadcast", event, payload }
      : { type: "broadcast", event, payload, persist }
    const message: Protocol.Message = {
      joinRef,
      ref: this.deps.transport.makeRef(),
      topic: this.topic,
      event: "broadcast",
      payload: body
    }
    if (!(this.config.broadcast?.ack ?? false)) return this.deps.transport.push(message)
    return Effect.flatMap(this.deps.transport.request(message, { timeout }), (reply): Effect.Effect<
      void,
      PayloadTooLarge | PushRejected
    > => {
      if (reply.status === "ok") return Effect.void
      if (reply.response === "payload_size_exceeded") {
        return Effect.fail(new PayloadTooLarge({ topic: this.topic, event }))
      }
      return Effect.fail(new PushRejected({ topic: this.topic, event, response: reply.response }))
    })
  }

  /**
   * Fails when the server ends the current join before `effect` completes: a push whose reply will
   * never come (the server drops a channel's pending pushes with it) fails at once, with the reason.
   */
  private orLost<A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E | ChannelClosed | PayloadTooLarge> {
    const lost = Effect.async<never, ChannelClosed | PayloadTooLarge>((resume) => {
      const fail = (reason: string) =>
        resume(Effect.fail(
          reason.includes(Config.TRACK_TOO_LARGE)
            ? new PayloadTooLarge({ topic: this.topic, event: "presence" })
            : new ChannelClosed({ topic: this.topic, reason })
        ))
      ;(this.lossWaiters ??= []).push(fail)
      return Effect.sync(() => removeFrom(this.lossWaiters, fail))
    })
    return Effect.raceFirst(effect, lost)
  }

  private pushPresence(payload: object, timeout: Duration.Duration) {
    return Effect.suspend(() => this.joinedRef(timeout)).pipe(
      Effect.flatMap((joinRef) =>
        this.orLost(this.deps.transport.request({
          joinRef,
          ref: this.deps.transport.makeRef(),
          topic: this.topic,
          event: "presence",
          payload
        }, { timeout }))
      ),
      Effect.flatMap((reply) =>
        reply.status === "ok"
          ? Effect.void
          : Effect.fail(new PushRejected({ topic: this.topic, event: "presence", response: reply.response }))
      )
    )
  }

  track(
    meta: object,
    options?: { readonly timeout?: Duration.DurationInput }
  ): ReturnType<Channel.RealtimeChannel["track"]> {
    return Effect.suspend((): ReturnType<Channel.RealtimeChannel["track"]> => {
      if (typeof meta !== "object" || meta === null || Array.isArray(meta)) {
        return Effect.fail(new InvalidArgument({ detail: "track: the presence meta must be an object" }))
      }
      if (this.currentStatus._tag === "Idle") this.presenceEnabled = true
      this.tracked = meta
      const timeout = options?.timeout === undefined ? this.timeout : Duration.decode(options.timeout)
      return this.pushPresence({ type: "presence", event: "track", payload: meta }, timeout)
    }).pipe(Effect.withSpan("RealtimeChannel.track", this.spanOptions))
  }

  untrack(options?: { readonly timeout?: Duration.DurationInput }): ReturnType<Channel.RealtimeChannel["untrack"]> {
    return Effect.suspend(() => {
      this.tracked = undefined
      const timeout = options?.timeout === undefined ? this.timeout : Duration.decode(options.timeout)
      return this.pushPresence({ type: "presence", event: "untrack" }, timeout)
    }).pipe(Effect.withSpan("RealtimeChannel.untrack", this.spanOptions))
  }

  /** What a log line or `JSON.stringify` shows of a channel: its topic and status, never its token. */
  toJSON(): unknown {
    return { _id: "RealtimeChannel", topic: this.topic, status: this.currentStatus }
  }

  toString(): string {
    return Inspectable.format(this.toJSON())
  }

  [Inspectable.NodeInspectSymbol](): unknown {
    return this.toJSON()
  }

  get bindingIds(): Effect.Effect<Option.Option<ReadonlyArray<ReadonlyArray<number>>>> {
    return Effect.sync(() => this.ids)
  }

  get lastJoinPayload(): Effect.Effect<Option.Option<Protocol.JoinPayload>> {
    return Effect.sync(() => this.joinPayload)
  }
}

/** Checks a channel's name and config, and builds it. @internal */
export const make = (
  name: string,
  config: Channel.ChannelConfig,
  options: Channel.ChannelOptions,
  deps: Deps,
  key?: string
): Either.Either<ChannelImpl, InvalidArgument> => {
  if (Topic.isEmpty(name)) {
    return Either.left(new InvalidArgument({ detail: "a channel needs a topic name" }))
  }
  const presenceKey = config.presence?.key
  if (presenceKey !== undefined && (typeof presenceKey !== "string" || presenceKey.trim() === "")) {
    return Either.left(
      new InvalidArgument({
        detail: `channel '${
          Topic.topicOf(name)
        }': presence.key must not be empty or blank (omit it for a key the server generates)`
      })
    )
  }
  if (config.broadcast?.replay !== undefined && !config.private) {
    return Either.left(
      new InvalidArgument({
        detail: `tried to use replay on public channel '${Topic.topicOf(name)}'. It must be a private channel.`
      })
    )
  }
  for (const binding of config.postgresChanges ?? []) {
    const wire = PostgresChanges.toWireEither(binding)
    if (Either.isLeft(wire)) return Either.left(wire.left)
  }
  return Either.right(new ChannelImpl(name, config, options, deps, key))
}
