/**
 * The channel of the Effect 4 edition: the shell of the core's state machine
 * (`core/channel/state.ts`) — it carries out the machine's commands and feeds it what happens — plus
 * the routing of inbound frames to the channel's streams and the outbound pushes.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Formatter from "effect/Formatter"
import * as Inspectable from "effect/Inspectable"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import type * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as SchemaIssue from "effect/SchemaIssue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import * as Config from "../../../src/core/channel/config.js"
import * as Replay from "../../../src/core/channel/replay.js"
import * as State from "../../../src/core/channel/state.js"
import { isJsonObject } from "../../../src/core/guards.js"
import * as Topic from "../../../src/core/topic.js"
import type * as AccessToken from "../AccessToken.js"
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
import * as Decode from "./channel/decode.js"
import * as PresenceView from "./channel/presence.js"
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
  readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
  /** Runs a synchronous effect with the client's services (its clock and random). */
  readonly runSync: <A>(effect: Effect.Effect<A>) => A
  /** The client's services, for the metrics updated synchronously on the per-frame path. */
  readonly context: Context.Context<never>
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

const initialSyncer = Presence.makeSyncer()

// The listener arrays are copied on write, never changed in place: in Effect 4 a fiber resumed from
// a callback runs at once, inside the call, so a consumer woken while an array is iterated may add or
// remove a listener before the iteration ends (the per-frame iteration stays allocation-free).

/** `array` with `value` added (a new array). */
const adding = <A>(array: ReadonlyArray<A> | undefined, value: A): ReadonlyArray<A> =>
  array === undefined ? [value] : [...array, value]

/** `array` without `value` (a new array, or `undefined` once empty). */
const without = <A>(array: ReadonlyArray<A> | undefined, value: A): ReadonlyArray<A> | undefined => {
  if (array === undefined) return undefined
  const i = array.indexOf(value)
  if (i < 0) return array
  if (array.length === 1) return undefined
  return array.slice(0, i).concat(array.slice(i + 1))
}

// What the channel tells its waiters and status and gap streams is delivered from a microtask, in
// order: in Effect 4 a resumed fiber runs at once, inside the call, and a subscriber must not run in
// the middle of a state machine step (before its commands have all run: the timer armed, the status
// shown), nor inside the transport's read loop or the client's fan-out of a socket change. One queue
// for every channel, drained by one microtask.
let notifications: Array<() => void> = []
const deliver = () => {
  const batch = notifications
  notifications = []
  for (let i = 0; i < batch.length; i++) batch[i]!()
}
const notify = (f: () => void): void => {
  if (notifications.push(f) === 1) queueMicrotask(deliver)
}

/**
 * One wait for the join's outcome (a subscriber's, or a send's that waits for the join): settled
 * once, by the join, a give-up or a leave.
 */
type JoinWaiter = Waiter<void, JoinFailure>

type Failure = State.Failure<JoinFailure>

// The statuses every subscribe goes through, built once (they are immutable values): a status built
// by `Data.taggedEnum` goes through a Proxy and an object spread (PERFORMANCE.md, Effect 4).
const idleStatus = Channel.ChannelStatus.Idle()
const firstJoiningStatus = Channel.ChannelStatus.Joining({ attempt: 0 })
const subscribedStatus = Channel.ChannelStatus.Subscribed({ rejoined: false, downtime: Duration.millis(0) })

const toStatus = (status: State.Status, downtimeMillis: number | undefined): Channel.ChannelStatus => {
  switch (status._tag) {
    case "Idle":
      return idleStatus
    case "Joining":
      return status.attempt === 0 ? firstJoiningStatus : Channel.ChannelStatus.Joining({ attempt: status.attempt })
    case "Subscribed":
      return downtimeMillis === undefined
        ? subscribedStatus
        : Channel.ChannelStatus.Subscribed({ rejoined: true, downtime: Duration.millis(downtimeMillis) })
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
  private currentStatus: Channel.ChannelStatus = idleStatus
  private statusInboxes: ReadonlyArray<Inbox<Channel.ChannelStatus>> | undefined
  private joinWaiters: ReadonlyArray<JoinWaiter> | undefined
  // events that arrive while a step's commands run are handled after it, in order
  private dispatching = false
  private readonly queued: Array<State.Event<JoinFailure>> = []
  // join waiters settled by the step that runs, woken once it has run
  private settled: Array<() => void> | undefined
  // a join attempt that wants its token fetched (set by FetchToken; run inline or forked)
  private tokenWanted: number | undefined
  private token: Option.Option<string> = Option.none()
  private forgetJoin: (() => void) | undefined
  private timer: Fiber.Fiber<void> | undefined
  // a waiting subscribe's deadline (armed at its first failure), and how long it waits at most
  private deadline: Fiber.Fiber<void> | undefined
  private patience: number | undefined
  private readonly env: State.Env
  private backoff: Backoff.Backoff | undefined
  private lastSystemError: string | undefined
  // pushes waiting for a reply on the current join, failed at once when the server ends it
  private lossWaiters: ReadonlyArray<(reason: string) => void> | undefined
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
  private readonly broadcastListeners = new Map<string, ReadonlyArray<Listener<Channel.Broadcast<unknown>>>>()
  private postgresListeners: ReadonlyArray<{ readonly index: number; readonly listener: Listener<unknown> }> | undefined
  private systemListeners: ReadonlyArray<Listener<Channel.SystemMessage>> | undefined
  private presenceListeners: ReadonlyArray<Listener<PresenceView.Item>> | undefined
  private presenceSourceCache: PresenceView.Source | undefined
  private retrackFiber: Fiber.Fiber<void> | undefined
  private dropsLogged = 0
  // when the channel last lost a join it held (cleared when it leaves): the next join is a rejoin
  private lostAt: number | undefined
  // where the next rejoin's replay starts: when the socket was last known alive before the loss
  // (kept from the first loss when the join is lost again during a catch-up)
  private replayFrom: number | undefined
  private gapInboxes: ReadonlyArray<Inbox<Channel.Gap>> | undefined
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
    this.timeout = options.timeout === undefined ? deps.timeout : Duration.fromInputUnsafe(options.timeout)
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
      this.statusInboxes = adding(this.statusInboxes, inbox)
      return () => {
        this.statusInboxes = without(this.statusInboxes, inbox)
      }
    })
  }

  /** One `Gap` per rejoin; ends once the channel is removed. */
  get gaps(): Stream.Stream<Channel.Gap> {
    return inboxStream<Channel.Gap>(Number.POSITIVE_INFINITY, (inbox) => {
      if (this.removed) {
        inbox.end()
        return () => {}
      }
      this.gapInboxes = adding(this.gapInboxes, inbox)
      return () => {
        this.gapInboxes = without(this.gapInboxes, inbox)
      }
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
    catchUp.timer?.interruptUnsafe()
    const timer = this.deps.runFork(
      Effect.sleep(ReplayTimer.REPLAY_SETTLE).pipe(Effect.andThen(Effect.sync(() => {
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
    catchUp.timer?.interruptUnsafe()
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
    if (inboxes !== undefined) {
      notify(() => {
        for (let i = 0; i < inboxes.length; i++) inboxes[i]!.offer(gap, true)
      })
    }
  }

  private setStatus(status: Channel.ChannelStatus): void {
    // statuses are plain objects in Effect 4: `Equal.equals` compares them structurally, hashing
    // every key (an eighth of a subscribe's CPU in the profile); a new tag is never equal
    if (status._tag === this.currentStatus._tag && Equal.equals(status, this.currentStatus)) return
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
    // the streams that are listening now get it (one that starts meanwhile begins with it)
    const inboxes = this.statusInboxes
    if (inboxes !== undefined) {
      notify(() => {
        for (let i = 0; i < inboxes.length; i++) inboxes[i]!.offer(status, true)
      })
    }
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
      const settled = this.settled
      if (settled !== undefined) {
        this.settled = undefined
        for (let i = 0; i < settled.length; i++) notify(settled[i]!)
      }
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
        if (command.attempt > 0) metrics.rejoins.updateUnsafe(1, this.deps.context)
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
            Effect.andThen(Effect.suspend(() => {
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
            Effect.andThen(Effect.suspend(() => {
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
    deadline.interruptUnsafe()
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
    timer.interruptUnsafe()
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
    const wake = () => {
      for (let i = 0; i < waiters.length; i++) waiters[i]!.settle(exit)
    }
    // after the statuses of the step: whoever waits for the join sees them first
    if (this.dispatching) (this.settled ??= []).push(wake)
    else notify(wake)
  }

  /** Waits for the join's outcome; `subscribe` also asks for the join. */
  private awaitJoin(subscribe: boolean): Effect.Effect<void, JoinFailure> {
    return Effect.suspend(() => {
      if (this.machine.state._tag === "Joined") return Effect.void
      const waiter: JoinWaiter = new Waiter()
      this.joinWaiters = adding(this.joinWaiters, waiter)
      const wait = waiter.await(() => {
        this.joinWaiters = without(this.joinWaiters, waiter)
      })
      return subscribe ? Effect.andThen(this.dispatchIn({ _tag: "Subscribe" }), wait) : wait
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
      const error = Cause.findErrorOption(exit.cause)
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
    if (Result.isFailure(matched)) {
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
        failure: { error: matched.failure, reason: matched.failure.message, permanent: true }
      })
    }
    this.ids = Option.some(matched.success)
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
    if (waiters !== undefined) {
      notify(() => {
        for (const fail of waiters) fail(reason)
      })
    }
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
      metrics.stale.updateUnsafe(1, this.deps.context)
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
    metrics.dropped.updateUnsafe(count, this.deps.context)
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
    if (!fresh) metrics.duplicates.updateUnsafe(1, this.deps.context)
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
      if (Option.makeEquivalence<string>((a, b) => a === b)(token, this.tokenSent)) return Effect.void
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
    return Effect.catch(
      this.deps.accessToken.refresh,
      (error) =>
        Effect.logWarning("access token source failed; joining with the last known token").pipe(
          Effect.annotateLogs({ topic: this.topic, error: error.message }),
          Effect.andThen(this.deps.accessToken.current)
        )
    )
  }

  private retrack(meta: object) {
    const previous = this.retrackFiber
    const track = this.pushPresence({ type: "presence", event: "track", payload: meta }, this.timeout).pipe(
      Effect.catch((error) =>
        Effect.logWarning("could not track presence again after the rejoin").pipe(
          Effect.annotateLogs({ topic: this.topic, error: error.message })
        )
      )
    )
    const fiber = this.deps.runFork(previous === undefined ? track : Effect.andThen(Fiber.interrupt(previous), track))
    this.retrackFiber = fiber
    fiber.addObserver(() => {
      if (this.retrackFiber === fiber) this.retrackFiber = undefined
    })
  }

  // The bookkeeping is uninterruptible; the wait is not (a caller may give up on it).
  get subscribe(): Effect.Effect<void, Channel.JoinError, Scope.Scope> {
    // Traced when the app installed a tracer. Effect's default (native) tracer exports nothing, yet
    // its span is about a third of a subscribe's own CPU (the fiber's context changes on entry and
    // on exit): PERFORMANCE.md, Effect 4. No stack trace for the span: the frame it would capture is
    // this getter (the library, not the caller).
    return Effect.flatMap(Effect.tracer, (tracer) =>
      tracer === Tracer.nativeTracer
        ? this.subscribeUntraced
        : Effect.withSpan(this.subscribeUntraced, "RealtimeChannel.subscribe", {
          ...this.spanOptions,
          captureStackTrace: false
        }))
  }

  private get spanOptions() {
    return { attributes: { topic: this.topic }, kind: "client" as const }
  }

  // The yield first: in Effect 4 a fiber forked just before (`stream.pipe(Effect.forkScoped)`, the
  // usual way to listen before subscribing) starts only when its parent yields, and a join answered
  // from memory (the in-process server, a fake socket) resumes the subscriber on a microtask, ahead
  // of it; yielding once lets the streams forked before `subscribe` register, so they see every
  // event from the join on, as the same code does over a real socket and in the Effect 3 edition.
  private get subscribeUntraced(): Effect.Effect<void, Channel.JoinError, Scope.Scope> {
    return Effect.andThen(Effect.yieldNow, this.subscribeJoin)
  }

  private get subscribeJoin(): Effect.Effect<void, Channel.JoinError, Scope.Scope> {
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
                  : Effect.andThen(this.dispatchIn({ _tag: "NoneWaits" }), Effect.failCause(cause))
              }
              // no one is left: leave (a join that may still land is left on the server)
              return Effect.andThen(this.leave("the join failed"), Effect.failCause(cause))
            },
            // released when the caller's scope closes
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
      return retrack === undefined ? unregister : Effect.andThen(Fiber.interrupt(retrack), unregister)
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
      return this.leave(reason).pipe(Effect.andThen(Effect.sync(() => this.endStreams())))
    })
  }

  /** Ends every stream, after what was told them before (the `Closed` status) has reached them. */
  private endStreams() {
    const broadcast = [...this.broadcastListeners.values()]
    const postgres = this.postgresListeners ?? []
    const system = this.systemListeners ?? []
    const presence = this.presenceListeners ?? []
    const statuses = this.statusInboxes ?? []
    const gaps = this.gapInboxes ?? []
    notify(() => {
      for (const set of broadcast) for (const l of set) l.end()
      for (const l of postgres) l.listener.end()
      for (const l of system) l.end()
      for (const l of presence) l.end()
      for (const inbox of statuses) inbox.end()
      for (const inbox of gaps) inbox.end()
    })
  }

  // ---------------------------------------------------------------------------
  // streams
  // ---------------------------------------------------------------------------
  //
  // Decoding is synchronous, chunk by chunk (what fails is logged from a fiber of its own): no
  // Effect per element.

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
  private mismatch(event: string, issue: SchemaIssue.Issue | string): Decode.Skipped {
    metrics.decodeFailures.updateUnsafe(1, this.deps.context)
    const error = payloadDecodeError(this.topic, event, issue)
    return new Decode.Skipped(
      Effect.logWarning("payload does not match the schema: skipped").pipe(
        Effect.annotateLogs({ topic: this.topic, event: error.event, error: error.detail })
      ),
      error
    )
  }

  /** The typed stream of `stream` (see `decodeStream`), logging from the client's fibers. */
  private decodeStream<A, B>(
    stream: Stream.Stream<A>,
    options: Channel.DecodeOptions | undefined,
    decode: (item: A) => B | Decode.Skipped
  ): Stream.Stream<B, PayloadDecodeError> {
    return Decode.decodeStream(stream, options, decode, this.deps.runFork)
  }

  // the overloads are `Channel.RealtimeChannel`'s (the error type follows `onDecodeError`)
  broadcast(
    eventOrDefinition: string | Channel.BroadcastEvent<any, any>,
    schemaOrOptions?: Schema.Codec<any, any> | Channel.DecodeOptions,
    maybeOptions?: Channel.DecodeOptions
  ): any {
    const named = typeof eventOrDefinition === "string"
    const event = named ? eventOrDefinition : eventOrDefinition.event
    const schema = named ? schemaOrOptions as Schema.Codec<any, any> | undefined : eventOrDefinition.schema
    const options = named ? maybeOptions : schemaOrOptions as Channel.DecodeOptions | undefined
    const key = event === "*" ? "*" : event.toLowerCase()
    const stream = this.listen<Channel.Broadcast<unknown>>((listener) => {
      this.broadcastListeners.set(key, adding(this.broadcastListeners.get(key), listener))
      return () => {
        const listeners = without(this.broadcastListeners.get(key), listener)
        if (listeners === undefined) this.broadcastListeners.delete(key)
        else this.broadcastListeners.set(key, listeners)
      }
    })
    // the inbox already holds `Broadcast`s: no per-element work without a schema
    if (schema === undefined) return stream
    const decode = Decode.safeDecoder(schema)
    return this.decodeStream(stream, options, (b): Channel.Broadcast<unknown> | Decode.Skipped => {
      const decoded = decode(b.payload)
      return Result.isSuccess(decoded)
        ? { event: b.event, payload: decoded.success, meta: b.meta }
        : this.mismatch(b.event, decoded.failure)
    })
  }

  get system(): Stream.Stream<Channel.SystemMessage> {
    return this.listen<Channel.SystemMessage>((listener) => {
      this.systemListeners = adding(this.systemListeners, listener)
      return () => {
        this.systemListeners = without(this.systemListeners, listener)
      }
    })
  }

  postgresChanges(
    binding?: PostgresChanges.Binding,
    schemaOrOptions?: Schema.Codec<any, any> | Channel.DecodeOptions,
    decodeOptions?: Channel.DecodeOptions
  ): any {
    const schema = Schema.isSchema(schemaOrOptions) ? schemaOrOptions as Schema.Codec<any, any> : undefined
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
    const decodeRow = schema === undefined ? undefined : Decode.safeDecoder(schema)
    const decodeOld = schema === undefined ? undefined : Decode.safeDecoder(Decode.partialOf(schema))
    const int8 = this.deps.int8
    const stream = this.listen<unknown>((listener) => {
      const entry = { index, listener }
      this.postgresListeners = adding(this.postgresListeners, entry)
      return () => {
        this.postgresListeners = without(this.postgresListeners, entry)
      }
    })
    return this.decodeStream(stream, options, (payload): PostgresChanges.Change<any> | Decode.Skipped => {
      const data = (payload as { readonly data: unknown }).data
      const change = PostgresChanges.convertChange(data, generated ? undefined : { int8 })
      if (Result.isFailure(change)) {
        return new Decode.Skipped(
          Effect.logWarning("malformed postgres_changes payload: skipped").pipe(
            Effect.annotateLogs({ topic: this.topic, error: change.failure.message })
          )
        )
      }
      if (generated) {
        const typed = PostgresChanges.toGeneratedTypes(data, change.success)
        return Result.isSuccess(typed)
          ? typed.success
          : this.mismatch(`postgres_changes ${change.success.table}`, typed.failure)
      }
      if (decodeRow === undefined) return change.success
      const c = change.success
      const row = c.eventType === "DELETE" ? Result.succeed({}) : decodeRow(c.new)
      if (Result.isFailure(row)) return this.mismatch(`postgres_changes ${c.table}`, row.failure)
      const old = c.eventType === "INSERT" ? Result.succeed({}) : decodeOld!(c.old)
      if (Result.isFailure(old)) return this.mismatch(`postgres_changes ${c.table}`, old.failure)
      return { ...c, new: row.success, old: old.success } as PostgresChanges.Change<any>
    })
  }

  presence<A extends object, I>(schema: Schema.Codec<A, I>): Channel.PresenceView<A>
  presence(): Channel.PresenceView<{ readonly [field: string]: unknown }>
  presence(schema?: Schema.Codec<any, any>): Channel.PresenceView<any> {
    if (this.currentStatus._tag === "Idle") this.presenceEnabled = true
    return PresenceView.makeView(this.presenceSource, schema)
  }

  /** What the presence views read of the channel (built once, on the first view). */
  private get presenceSource(): PresenceView.Source {
    return this.presenceSourceCache ??= {
      state: () => this.syncer.state,
      items: this.listen<PresenceView.Item>((listener) => this.addPresenceListener(listener)),
      fromNow: this.listen<PresenceView.Item>((listener) => {
        listener.inbox.offer(this.syncer.state, true)
        return this.addPresenceListener(listener)
      }),
      track: (meta, options) => this.track(meta, options),
      mismatch: () => metrics.decodeFailures.updateUnsafe(1, this.deps.context)
    }
  }

  private addPresenceListener(listener: Listener<PresenceView.Item>): () => void {
    this.presenceListeners = adding(this.presenceListeners, listener)
    return () => {
      this.presenceListeners = without(this.presenceListeners, listener)
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
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () =>
          Effect.fail(
            new ChannelClosed({ topic: this.topic, reason: `not joined within ${Duration.toMillis(timeout)} ms` })
          )
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
    return Schema.encodeUnknownEffect(eventOrDefinition.schema)(value).pipe(
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
    const timeout = options?.timeout === undefined ? this.timeout : Duration.fromInputUnsafe(options.timeout)
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
    const lost = Effect.callback<never, ChannelClosed | PayloadTooLarge>((resume) => {
      const fail = (reason: string) =>
        resume(Effect.fail(
          reason.includes(Config.TRACK_TOO_LARGE)
            ? new PayloadTooLarge({ topic: this.topic, event: "presence" })
            : new ChannelClosed({ topic: this.topic, reason })
        ))
      this.lossWaiters = adding(this.lossWaiters, fail)
      return Effect.sync(() => {
        this.lossWaiters = without(this.lossWaiters, fail)
      })
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
    options?: { readonly timeout?: Duration.Input }
  ): ReturnType<Channel.RealtimeChannel["track"]> {
    return Effect.suspend((): ReturnType<Channel.RealtimeChannel["track"]> => {
      if (typeof meta !== "object" || meta === null || Array.isArray(meta)) {
        return Effect.fail(new InvalidArgument({ detail: "track: the presence meta must be an object" }))
      }
      if (this.currentStatus._tag === "Idle") this.presenceEnabled = true
      this.tracked = meta
      const timeout = options?.timeout === undefined ? this.timeout : Duration.fromInputUnsafe(options.timeout)
      return this.pushPresence({ type: "presence", event: "track", payload: meta }, timeout)
    }).pipe(Effect.withSpan("RealtimeChannel.track", this.spanOptions))
  }

  untrack(options?: { readonly timeout?: Duration.Input }): ReturnType<Channel.RealtimeChannel["untrack"]> {
    return Effect.suspend(() => {
      this.tracked = undefined
      const timeout = options?.timeout === undefined ? this.timeout : Duration.fromInputUnsafe(options.timeout)
      return this.pushPresence({ type: "presence", event: "untrack" }, timeout)
    }).pipe(Effect.withSpan("RealtimeChannel.untrack", this.spanOptions))
  }

  /** What a log line or `JSON.stringify` shows of a channel: its topic and status, never its token. */
  toJSON(): unknown {
    return { _id: "RealtimeChannel", topic: this.topic, status: this.currentStatus }
  }

  toString(): string {
    return Formatter.format(this.toJSON())
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
): Result.Result<ChannelImpl, InvalidArgument> => {
  if (Topic.isEmpty(name)) {
    return Result.fail(new InvalidArgument({ detail: "a channel needs a topic name" }))
  }
  const presenceKey = config.presence?.key
  if (presenceKey !== undefined && (typeof presenceKey !== "string" || presenceKey.trim() === "")) {
    return Result.fail(
      new InvalidArgument({
        detail: `channel '${
          Topic.topicOf(name)
        }': presence.key must not be empty or blank (omit it for a key the server generates)`
      })
    )
  }
  if (config.broadcast?.replay !== undefined && !config.private) {
    return Result.fail(
      new InvalidArgument({
        detail: `tried to use replay on public channel '${Topic.topicOf(name)}'. It must be a private channel.`
      })
    )
  }
  for (const binding of config.postgresChanges ?? []) {
    const wire = PostgresChanges.toWireResult(binding)
    if (Result.isFailure(wire)) return Result.fail(wire.failure)
  }
  return Result.succeed(new ChannelImpl(name, config, options, deps, key))
}
