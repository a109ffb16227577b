/**
 * The channel of the Effect 4 edition: the core's channel shell (`core/channel/shell.ts`: the state
 * machine's shell, the status, the routing of inbound frames) with what needs Effect here. Its
 * concerns live in `./channel/`: the join and its lifecycle (`lifecycle.ts`), sends and presence
 * pushes (`send.ts`), the streams (`streams.ts`, decoded by `decode.ts`, presence views by
 * `presence.ts`).
 *
 * @internal
 */
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import type * as Fiber from "effect/Fiber"
import * as Formatter from "effect/Formatter"
import * as Inspectable from "effect/Inspectable"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import type * as Schedule from "effect/Schedule"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as Config from "../../../src/core/channel/config.js"
import * as Shell from "../../../src/core/channel/shell.js"
import type * as State from "../../../src/core/channel/state.js"
import * as Status from "../../../src/core/channel/status.js"
import * as Topic from "../../../src/core/topic.js"
import type * as AccessToken from "../AccessToken.js"
import type * as HttpBroadcast from "../HttpBroadcast.js"
import type * as PostgresChanges from "../PostgresChanges.js"
import * as Presence from "../Presence.js"
import type * as Protocol from "../Protocol.js"
import * as RealtimeChannel from "../RealtimeChannel.js"
import {
  ChannelClosed,
  InvalidArgument,
  joinRejected,
  JoinTimeout,
  PostgresBindingMismatch,
  type SocketClosed
} from "../RealtimeError.js"
import type * as Transport from "../Transport.js"
import * as Backoff from "./backoff.js"
import * as Lifecycle from "./channel/lifecycle.js"
import type * as PresenceView from "./channel/presence.js"
import * as Send from "./channel/send.js"
import * as Streams from "./channel/streams.js"

const metrics = RealtimeChannel.metrics

/** What a channel needs from its client. @internal */
export interface Deps extends Shell.Deps {
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
  /** How long a join must hold before losing it no longer counts as a failure (a heartbeat interval). */
  readonly stableAfter: Duration.Duration
  /** Checks the channel is still the client's, and connects the socket. */
  readonly register: (channel: ChannelImpl) => Effect.Effect<void, ChannelClosed>
  /** A channel stopped being subscribed (the socket may close when none is). */
  readonly unregister: (channel: ChannelImpl) => Effect.Effect<void>
}

/** The shell's types in this edition. */
interface EditionTypes extends Shell.Types {
  readonly error: RealtimeChannel.JoinError
  readonly status: RealtimeChannel.ChannelStatus
  readonly gap: RealtimeChannel.Gap
  readonly timer: Fiber.Fiber<void>
  readonly config: RealtimeChannel.ChannelConfig
  readonly deps: Deps
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

// the statuses every subscribe goes through are built once (PERFORMANCE.md)
const statuses = Status.buildingCommonOnce<RealtimeChannel.ChannelStatus>({
  idle: () => RealtimeChannel.ChannelStatus.Idle(),
  joining: (attempt) => RealtimeChannel.ChannelStatus.Joining({ attempt }),
  subscribed: (downtimeMillis) =>
    RealtimeChannel.ChannelStatus.Subscribed({
      rejoined: downtimeMillis !== undefined,
      downtime: Duration.millis(downtimeMillis ?? 0)
    }),
  errored: (reason) => RealtimeChannel.ChannelStatus.Errored({ reason }),
  timedOut: (timeoutMillis) => RealtimeChannel.ChannelStatus.TimedOut({ timeoutMillis }),
  rejoining: (attempt, delayMillis) =>
    RealtimeChannel.ChannelStatus.Rejoining({ attempt, delay: Duration.millis(delayMillis) }),
  closed: (reason) => RealtimeChannel.ChannelStatus.Closed({ reason })
})

const counters: { readonly [K in Shell.Metric]: (typeof metrics)[K] } = {
  stale: metrics.stale,
  dropped: metrics.dropped,
  duplicates: metrics.duplicates,
  rejoins: metrics.rejoins
}

/** The key that makes two configs the same channel. @internal */
export const configKey = Config.configKey

/** The topic of a channel name. @internal */
export const topicOf = Topic.topicOf

/** What a socket event means for a channel (built once per event by the client, for every channel). */
export const socketFailure: (error: SocketClosed, permanent: boolean) => State.Failure<RealtimeChannel.JoinError> =
  Shell.socketFailure

/**
 * A channel: the core's shell (see the module's note) and what it needs from this edition (fibers
 * for its timers, this edition's errors and statuses), with the public API over `./channel/`.
 *
 * @internal
 */
export class ChannelImpl extends Shell.ChannelShell<EditionTypes> implements RealtimeChannel.RealtimeChannel {
  readonly [RealtimeChannel.TypeId]: RealtimeChannel.TypeId = RealtimeChannel.TypeId
  readonly timeout: Duration.Duration
  backoff: Backoff.Backoff | undefined
  // a set (see `lossWaiters`): `settle` detaches it before waking them
  joinWaiters: Set<Lifecycle.JoinWaiter> | undefined
  /** Join waiters settled by the step that runs, woken once it has run. */
  settled: Array<() => void> | undefined
  /** The last join payload written, its token redacted. */
  sentJoin: Option.Option<Protocol.JoinPayload> = Option.none()
  retrackFiber: Fiber.Fiber<void> | undefined
  presenceSourceCache: PresenceView.Source | undefined

  constructor(
    name: string,
    config: RealtimeChannel.ChannelConfig,
    options: RealtimeChannel.ChannelOptions,
    deps: Deps,
    key?: string
  ) {
    super(name, config, options, deps, key)
    this.timeout = options.timeout === undefined ? deps.timeout : Duration.fromInputUnsafe(options.timeout)
  }

  // ---------------------------------------------------------------------------
  // what the shell needs
  // ---------------------------------------------------------------------------

  nextDelay(): number | undefined {
    const delay = this.deps.runSync((this.backoff ??= Backoff.make(this.deps.rejoin)).next(undefined))
    return Option.isSome(delay) ? Duration.toMillis(delay.value) : undefined
  }

  resetDelay(): void {
    this.backoff?.reset()
  }

  get stableMillis(): number {
    return Duration.toMillis(this.deps.stableAfter)
  }

  /**
   * The longest a subscribe waits: `maxRejoinFailures` join timeouts and the rejoin schedule's
   * first `maxRejoinFailures - 1` delays (168 s with the defaults).
   */
  computePatience(): number {
    const schedule = Backoff.make(this.deps.rejoin)
    let total = this.maxRejoinFailures * Duration.toMillis(this.joinTimeout)
    for (let i = 1; i < this.maxRejoinFailures; i++) {
      const delay = this.deps.runSync(schedule.next(undefined))
      if (Option.isNone(delay)) break
      total += Duration.toMillis(delay.value)
    }
    return total
  }

  makeStatus(status: State.Status, downtimeMillis: number | undefined): RealtimeChannel.ChannelStatus {
    return Status.toStatus(status, downtimeMillis, statuses)
  }

  // statuses are plain objects in Effect 4: `Equal.equals` compares them structurally, hashing every
  // key (an eighth of a subscribe's CPU in the profile); a new tag is never equal
  sameStatus(a: RealtimeChannel.ChannelStatus, b: RealtimeChannel.ChannelStatus): boolean {
    return a._tag === b._tag && Equal.equals(a, b)
  }

  makeGap(downtimeMillis: number, replayed: number, reason: string): RealtimeChannel.Gap {
    return { downtime: Duration.millis(downtimeMillis), replayed, complete: reason === "", reason }
  }

  later(f: () => void): void {
    notify(f)
  }

  /** Wakes the join waiters the step settled, after the statuses it showed. */
  override stepped(): void {
    const settled = this.settled
    if (settled === undefined) return
    this.settled = undefined
    for (let i = 0; i < settled.length; i++) notify(settled[i]!)
  }

  startTimer(
    delayMillis: number,
    fire: () => State.Event<RealtimeChannel.JoinError> | undefined
  ): Fiber.Fiber<void> {
    return this.deps.runFork(
      Effect.sleep(Duration.millis(delayMillis)).pipe(Effect.andThen(Effect.suspend(() => {
        const event = fire()
        return event === undefined ? Effect.void : Lifecycle.dispatchIn(this, event)
      })))
    )
  }

  stopTimer(timer: Fiber.Fiber<void>): void {
    timer.interruptUnsafe()
  }

  currentToken(): string | undefined {
    return Option.getOrUndefined(this.deps.runSync(this.deps.accessToken.current))
  }

  fetchTokenDetached(ticket: number): void {
    this.deps.runFork(Lifecycle.fetchToken(this, ticket))
  }

  writeJoin(joinRef: string): void {
    Lifecycle.writeJoin(this, joinRef)
  }

  settle(outcome: State.Outcome<RealtimeChannel.JoinError>): void {
    Lifecycle.settle(this, outcome)
  }

  retrack(meta: object): void {
    Send.retrack(this, meta)
  }

  count(metric: Shell.Metric, n: number): void {
    counters[metric].updateUnsafe(n, this.deps.context)
  }

  log(level: Shell.LogLevel, message: string, annotations: { readonly [key: string]: unknown }): void {
    this.deps.runFork(
      (level === "Info" ? Effect.logInfo(message) : Effect.logWarning(message)).pipe(Effect.annotateLogs(annotations))
    )
  }

  closedError(reason: string): ChannelClosed {
    return new ChannelClosed({ topic: this.topic, reason })
  }

  joinTimeoutError(timeoutMillis: number): JoinTimeout {
    return new JoinTimeout({ topic: this.topic, timeoutMillis })
  }

  rejectedError(response: unknown): RealtimeChannel.JoinError {
    return joinRejected(this.topic, response)
  }

  mismatchError(detail: string): PostgresBindingMismatch {
    return new PostgresBindingMismatch({ detail })
  }

  get presenceEvents(): typeof Presence.PresenceEvent {
    return Presence.PresenceEvent
  }

  /** How long a join waits for its reply (longer when the server waits for its bindings). */
  get joinTimeout(): Duration.Duration {
    return Duration.millis(Config.joinTimeoutMillis(this.config, Duration.toMillis(this.timeout)))
  }

  get spanOptions() {
    return { attributes: { topic: this.topic }, kind: "client" as const }
  }

  // ---------------------------------------------------------------------------
  // the public API
  // ---------------------------------------------------------------------------

  get status(): Effect.Effect<RealtimeChannel.ChannelStatus> {
    return Effect.sync(() => this.currentStatus)
  }

  /** The current status, then every change; ends after `Closed` once the channel is removed. */
  get statusChanges(): Stream.Stream<RealtimeChannel.ChannelStatus> {
    return Streams.statusChanges(this)
  }

  /** One `Gap` per rejoin; ends once the channel is removed. */
  get gaps(): Stream.Stream<RealtimeChannel.Gap> {
    return Streams.gaps(this)
  }

  get subscribe(): Effect.Effect<void, RealtimeChannel.JoinError, Scope.Scope> {
    return Lifecycle.subscribe(this)
  }

  /** Leaves the topic (if joined) and ends the channel's join: written now, never awaited. */
  leave(reason: string): Effect.Effect<void> {
    return Lifecycle.leave(this, reason)
  }

  /** Removed from the client: leave and end every stream. */
  remove(reason: string): Effect.Effect<void> {
    return Lifecycle.remove(this, reason)
  }

  send<A, I>(
    event: RealtimeChannel.BroadcastEvent<A, I>,
    payload: A,
    options?: RealtimeChannel.SendOptions
  ): Effect.Effect<void, RealtimeChannel.SendError>
  send(event: string, payload: unknown, options?: RealtimeChannel.SendOptions): Effect.Effect<
    void,
    RealtimeChannel.SendError
  >
  send(
    eventOrDefinition: string | RealtimeChannel.BroadcastEvent<any, any>,
    value: unknown,
    options?: RealtimeChannel.SendOptions
  ): Effect.Effect<void, RealtimeChannel.SendError> {
    return Send.send(this, eventOrDefinition, value, options)
  }

  track(
    meta: object,
    options?: { readonly timeout?: Duration.Input }
  ): ReturnType<RealtimeChannel.RealtimeChannel["track"]> {
    return Send.track(this, meta, options)
  }

  untrack(
    options?: { readonly timeout?: Duration.Input }
  ): ReturnType<RealtimeChannel.RealtimeChannel["untrack"]> {
    return Send.untrack(this, options)
  }

  // the overloads are `RealtimeChannel`'s (the error type follows `onDecodeError`)
  broadcast(
    eventOrDefinition: string | RealtimeChannel.BroadcastEvent<any, any>,
    schemaOrOptions?: Schema.Codec<any, any> | RealtimeChannel.DecodeOptions,
    maybeOptions?: RealtimeChannel.DecodeOptions
  ): any {
    return Streams.broadcast(this, eventOrDefinition, schemaOrOptions, maybeOptions)
  }

  get system(): Stream.Stream<RealtimeChannel.SystemMessage> {
    return Streams.system(this)
  }

  postgresChanges(
    binding?: PostgresChanges.Binding,
    schemaOrOptions?: Schema.Codec<any, any> | RealtimeChannel.DecodeOptions,
    decodeOptions?: RealtimeChannel.DecodeOptions
  ): any {
    return Streams.postgresChanges(this, binding, schemaOrOptions, decodeOptions)
  }

  presence<A extends object, I>(schema: Schema.Codec<A, I>): RealtimeChannel.PresenceView<A>
  presence(): RealtimeChannel.PresenceView<{ readonly [field: string]: unknown }>
  presence(schema?: Schema.Codec<any, any>): RealtimeChannel.PresenceView<any> {
    return Streams.presence(this, schema)
  }

  get bindingIds(): Effect.Effect<Option.Option<ReadonlyArray<ReadonlyArray<number>>>> {
    return Effect.sync(() => Option.fromUndefinedOr(this.matchedIds))
  }

  get lastJoinPayload(): Effect.Effect<Option.Option<Protocol.JoinPayload>> {
    return Effect.sync(() => this.sentJoin)
  }

  override toString(): string {
    return Formatter.format(this.toJSON())
  }

  [Inspectable.NodeInspectSymbol](): unknown {
    return this.toJSON()
  }
}

/** Checks a channel's name and config, and builds it. @internal */
export const make = (
  name: string,
  config: RealtimeChannel.ChannelConfig,
  options: RealtimeChannel.ChannelOptions,
  deps: Deps,
  key?: string
): Result.Result<ChannelImpl, InvalidArgument> => {
  const refused = Config.checkChannel(name, config)
  return refused === undefined
    ? Result.succeed(new ChannelImpl(name, config, options, deps, key))
    : Result.fail(new InvalidArgument({ detail: refused }))
}
