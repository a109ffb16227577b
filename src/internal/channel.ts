import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberHandle from "effect/FiberHandle"
import * as FiberId from "effect/FiberId"
import * as Mailbox from "effect/Mailbox"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Runtime from "effect/Runtime"
import type * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
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
  PayloadTooLarge,
  PushRejected
} from "../RealtimeError.js"
import type * as Transport from "../Transport.js"
import * as Backoff from "./backoff.js"

/** @internal */
export const metrics = {
  dropped: Metric.counter("realtime_events_dropped", {
    description: "Events dropped because a stream's mailbox was full",
    incremental: true
  }),
  stale: Metric.counter("realtime_frames_stale", {
    description: "Channel frames ignored because they belong to an earlier join",
    incremental: true
  }),
  decodeFailures: Metric.counter("realtime_payload_decode_failures", {
    description: "Payloads that did not match the subscriber's schema (skipped)",
    incremental: true
  }),
  rejoins: Metric.counter("realtime_rejoins", {
    description: "Channel rejoin attempts",
    incremental: true
  })
} as const

/** What a channel needs from its client. @internal */
export interface Deps {
  readonly transport: Transport.Transport
  readonly accessToken: AccessToken.AccessToken
  readonly httpBroadcast: Option.Option<HttpBroadcast.HttpBroadcast>
  readonly rejoin: Schedule.Schedule<unknown, unknown>
  readonly timeout: Duration.Duration
  readonly int8: PostgresChanges.ConvertOptions["int8"]
  readonly runtime: Runtime.Runtime<never>
  /** Checks the channel is still the client's, and connects the socket. */
  readonly register: (channel: ChannelImpl) => Effect.Effect<void, ChannelClosed>
  /** A channel stopped being subscribed (the socket may close when none is). */
  readonly unregister: (channel: ChannelImpl) => Effect.Effect<void>
}

/** Join errors after which a rejoin cannot succeed without a change on the user's side. */
const permanentCodes = new Set([
  "TopicNameRequired",
  "Unauthorized",
  "MalformedJWT",
  "JwtSignatureError",
  "JwtSignerError",
  "PrivateOnly",
  "TenantNotFound",
  "RealtimeDisabledForTenant",
  "UnableToReplayMessages",
  "InvalidJWTToken",
  "Unknown"
])

type JoinFailure = Channel.JoinError

const isPermanent = (error: JoinFailure): boolean =>
  (error._tag === "JoinRejected" && permanentCodes.has(error.code)) || error._tag === "InvalidArgument" ||
  error._tag === "PostgresBindingMismatch"

/**
 * A stream's mailbox, fed in batches. The first event of a task (a socket read) goes to the mailbox
 * at once: a lone event (an echo, a reply-time broadcast) wakes its stream with no added latency and
 * ahead of what the rest of the read resumes. The next ones wait for the end of the task (a
 * microtask), and a burst (`BURST` events or more) for the end of the I/O turn, so that with many
 * channels each stream wakes once per turn rather than once per socket read. Order is kept: a
 * stream with events waiting never takes one at once. `unsafeDone` hands over what is pending
 * first.
 */
class Listener<A> {
  private pending: Array<A> = []
  constructor(readonly mailbox: Mailbox.Mailbox<A>, private readonly onDropped: (count: number) => void) {}
  unsafeOffer(value: A): void {
    if (taskEvents++ === 0) queueMicrotask(endOfTask)
    if (taskEvents === 1 && !deferred && this.pending.length === 0) {
      if (!this.mailbox.unsafeOffer(value)) this.onDropped(1)
    } else if (this.pending.push(value) === 1) {
      dirty.push(this)
    }
  }
  flush(): void {
    if (this.pending.length === 0) return
    const pending = this.pending
    this.pending = []
    const dropped = this.mailbox.unsafeOfferAll(pending)
    if (dropped.length > 0) this.onDropped(dropped.length)
  }
  unsafeDone(exit: Exit.Exit<void>): boolean {
    this.flush()
    return this.mailbox.unsafeDone(exit)
  }
}

const BURST = 64
let dirty: Array<Listener<any>> = []
// events offered since the last flush (the current task, or the whole turn of a burst)
let taskEvents = 0
let deferred = false
const flushAll = () => {
  const listeners = dirty
  dirty = []
  taskEvents = 0
  deferred = false
  for (let i = 0; i < listeners.length; i++) listeners[i]!.flush()
}
// the end of the I/O turn where there is one (Node, Bun, Deno); else the microtask is the turn
const runAfterIo: ((f: () => void) => void) | undefined = typeof globalThis.setImmediate === "function"
  ? (f) => {
    globalThis.setImmediate(f)
  }
  : undefined
const endOfTask = () => {
  if (deferred) return
  if (taskEvents >= BURST && runAfterIo !== undefined) {
    deferred = true
    runAfterIo(flushAll)
  } else {
    flushAll()
  }
}

const decodeSystem = (payload: unknown): Channel.SystemMessage | undefined => {
  if (typeof payload !== "object" || payload === null) return undefined
  const p = payload as Record<string, unknown>
  return {
    extension: typeof p.extension === "string" ? p.extension : "",
    status: typeof p.status === "string" ? p.status : "",
    message: typeof p.message === "string" ? p.message : "",
    channel: typeof p.channel === "string" ? p.channel : undefined
  }
}

const canonical = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(canonical)
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key]
      if (v !== undefined) out[key] = canonical(v)
    }
    return out
  }
  return value
}

/** A stable text of what makes two configs the same channel on the wire. @internal */
export const configKey = (config: Channel.ChannelConfig): string =>
  JSON.stringify(canonical({
    ...config,
    postgresChanges: config.postgresChanges?.map(PostgresChanges.toWire)
  }))

/** @internal */
export const topicOf = (name: string): string => name.startsWith("realtime:") ? name : `realtime:${name}`

/** @internal */
export class ChannelImpl implements Channel.RealtimeChannel {
  readonly [Channel.TypeId]: Channel.TypeId = Channel.TypeId
  readonly topic: string
  readonly status: Effect.Effect<Channel.ChannelStatus>
  readonly statusChanges: Stream.Stream<Channel.ChannelStatus>
  readonly key: string

  private joinRef: string | null = null
  private subscribers = 0
  private leaving = false
  private removed = false
  private currentStatus: Channel.ChannelStatus = Channel.ChannelStatus.Idle()
  private inflightJoin: Deferred.Deferred<void, JoinFailure> | undefined
  private lastSystemError: string | undefined
  private ids: Option.Option<ReadonlyArray<ReadonlyArray<number>>> = Option.none()
  private joinPayload: Option.Option<Protocol.JoinPayload> = Option.none()
  private tokenSent: Option.Option<string> = Option.none()
  private tracked: object | undefined
  private syncer = Presence.makeSyncer()
  private presenceEnabled: boolean
  private readonly bindings: ReadonlyArray<PostgresChanges.Binding>
  private readonly wireBindings: ReadonlyArray<PostgresChanges.WireBinding>
  private readonly bufferSize: number
  private readonly timeout: Duration.Duration
  private readonly maxRejoinFailures: number
  private readonly httpFallback: boolean
  // arrays, not Sets: iterating a Set allocates per frame; "*" is looked up once per frame
  private readonly broadcastListeners = new Map<string, Array<Listener<Channel.Broadcast<unknown>>>>()
  private readonly postgresListeners = new Set<{ readonly index: number; readonly mailbox: Listener<unknown> }>()
  private readonly systemListeners = new Set<Listener<Channel.SystemMessage>>()
  private readonly presenceListeners = new Set<
    Listener<ReadonlyArray<Presence.PresenceEvent> | Presence.PresenceState>
  >()
  private readonly statusRef: SubscriptionRef.SubscriptionRef<Channel.ChannelStatus>
  private readonly rejoinHandle: FiberHandle.FiberHandle<void, never>
  private readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => void
  private dropsLogged = 0

  constructor(
    readonly name: string,
    readonly config: Channel.ChannelConfig,
    options: Channel.ChannelOptions,
    private readonly deps: Deps,
    statusRef: SubscriptionRef.SubscriptionRef<Channel.ChannelStatus>,
    rejoinHandle: FiberHandle.FiberHandle<void, never>,
    private readonly retrackHandle: FiberHandle.FiberHandle<void, never>
  ) {
    this.topic = topicOf(name)
    this.key = configKey(config)
    this.statusRef = statusRef
    this.rejoinHandle = rejoinHandle
    this.status = Effect.sync(() => this.currentStatus)
    this.statusChanges = statusRef.changes
    this.bindings = config.postgresChanges ?? []
    this.wireBindings = this.bindings.map(PostgresChanges.toWire)
    this.presenceEnabled = config.presence?.enabled ?? config.presence !== undefined
    this.bufferSize = options.bufferSize ?? 65_536
    this.timeout = options.timeout === undefined ? deps.timeout : Duration.decode(options.timeout)
    this.maxRejoinFailures = options.maxRejoinFailures ?? 10
    this.httpFallback = options.httpFallback ?? true
    const runFork = Runtime.runFork(deps.runtime)
    this.runFork = (effect) => {
      runFork(effect)
    }
  }

  // ---------------------------------------------------------------------------
  // status
  // ---------------------------------------------------------------------------

  /** Whether someone holds a subscription. @internal */
  get isActive(): boolean {
    return this.subscribers > 0
  }

  private setStatus(status: Channel.ChannelStatus): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.currentStatus = status
      return SubscriptionRef.set(this.statusRef, status)
    })
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
        if (message.ref !== null && message.ref !== this.joinRef) return
        if (this.leaving || this.joinRef === null) return
        return this.onLost(this.lastSystemError ?? "closed by the server", true)
      case "phx_error":
        if (message.ref !== null && message.ref !== this.joinRef) return
        if (this.joinRef === null) return
        return this.onLost("channel crashed on the server", true)
    }
  }

  private readonly onDropped = (count: number) => {
    metrics.dropped.unsafeUpdate(count, [])
    const before = this.dropsLogged
    this.dropsLogged += count
    if (before === 0 || Math.floor(before / 1000) !== Math.floor(this.dropsLogged / 1000)) {
      this.runFork(
        Effect.logWarning("a stream's mailbox is full: dropping events").pipe(
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
    const listeners = this.broadcastListeners
    const all = listeners.get("*")
    const some = listeners.size > (all === undefined ? 0 : 1) ? listeners.get(event.toLowerCase()) : undefined
    if (all === undefined && some === undefined) return
    const item: Channel.Broadcast<unknown> = { event, payload: p.payload, meta: p.meta }
    if (all !== undefined) { for (let i = 0; i < all.length; i++) all[i]!.unsafeOffer(item) }
    if (some !== undefined) { for (let i = 0; i < some.length; i++) some[i]!.unsafeOffer(item) }
  }

  private onPostgresChanges(payload: unknown) {
    if (this.postgresListeners.size === 0 || Option.isNone(this.ids)) return
    const p = payload as { readonly ids?: unknown; readonly data?: { readonly type?: unknown } }
    if (!Array.isArray(p?.ids) || typeof p.data !== "object" || p.data === null) return
    const type = typeof p.data.type === "string" ? p.data.type.toUpperCase() : ""
    const ids = this.ids.value
    for (const listener of this.postgresListeners) {
      if (listener.index >= 0) {
        const binding = this.wireBindings[listener.index]!
        if (binding.event !== "*" && binding.event.toUpperCase() !== type) continue
        const mine = ids[listener.index]!
        if (!p.ids.some((id) => mine.includes(id as number))) continue
      }
      listener.mailbox.unsafeOffer(payload)
    }
  }

  private onSystem(payload: unknown) {
    const system = decodeSystem(payload)
    if (system === undefined) return
    if (system.extension === "system" && system.status === "error") this.lastSystemError = system.message
    for (const mailbox of this.systemListeners) mailbox.unsafeOffer(system)
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
    if (!result.synced) return
    for (const mailbox of this.presenceListeners) {
      if (result.events.length > 0) mailbox.unsafeOffer(result.events)
      mailbox.unsafeOffer(result.syncer.state)
    }
  }

  /** The join is gone (server close or crash, or the socket): rejoin. */
  private onLost(reason: string, backoffFirst: boolean) {
    this.joinRef = null
    this.lastSystemError = undefined
    this.runFork(
      this.setStatus(Channel.ChannelStatus.Errored({ reason })).pipe(
        Effect.zipRight(
          Effect.logWarning("channel lost its join").pipe(
            Effect.annotateLogs({ topic: this.topic, reason })
          )
        ),
        Effect.zipRight(this.startRejoin(backoffFirst))
      )
    )
  }

  /** @internal called by the client when the socket went down */
  onSocketDown(reason: string) {
    if (this.subscribers === 0 || this.removed) return
    if (this.joinRef !== null || this.currentStatus._tag === "Joining") {
      this.joinRef = null
      this.runFork(
        this.setStatus(Channel.ChannelStatus.Errored({ reason })).pipe(Effect.zipRight(this.startRejoin(false)))
      )
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
  // join / rejoin / leave
  // ---------------------------------------------------------------------------

  private buildJoinPayload(token: Option.Option<string>): Protocol.JoinPayload {
    const broadcast: Record<string, unknown> = {
      ack: this.config.broadcast?.ack ?? false,
      self: this.config.broadcast?.self ?? false
    }
    const replay = this.config.broadcast?.replay
    if (replay !== undefined) {
      broadcast.replay = replay.limit === undefined
        ? { since: replay.since }
        : { since: replay.since, limit: replay.limit }
    }
    if (this.config.broadcast?.replicationReady) broadcast.replication_ready = true
    const config: Record<string, unknown> = {
      broadcast,
      presence: { key: this.config.presence?.key ?? "", enabled: this.presenceEnabled },
      postgres_changes: this.wireBindings,
      private: this.config.private ?? false
    }
    const pgOptions = this.config.postgresChangesOptions
    if (pgOptions !== undefined) {
      config.postgres_changes_options = Object.fromEntries(
        Object.entries(pgOptions).filter(([, v]) => v !== undefined)
      )
    }
    const payload: Record<string, unknown> = { config }
    if (Option.isSome(token)) payload.access_token = token.value
    return payload as unknown as Protocol.JoinPayload
  }

  private get joinTimeout(): Duration.Duration {
    const options = this.config.postgresChangesOptions
    if (options?.wait && this.bindings.length > 0) {
      return Duration.max(this.timeout, Duration.millis((options.timeout ?? 15_000) + 10_000))
    }
    return this.timeout
  }

  private readonly token: Effect.Effect<Option.Option<string>> = Effect.suspend(() =>
    this.deps.accessToken.refresh.pipe(
      Effect.catchAll((error) =>
        Effect.logWarning("access token source failed; joining with the last known token").pipe(
          Effect.annotateLogs({ topic: this.topic, error: error.message }),
          Effect.zipRight(this.deps.accessToken.current)
        )
      )
    )
  )

  /** One join attempt: the token first (never a token-less join while a fetch is pending). */
  private joinOnce(attempt: number): Effect.Effect<void, JoinFailure> {
    const self = this
    return Effect.gen(function*() {
      const token = yield* self.token
      const ref = self.deps.transport.makeRef()
      const payload = self.buildJoinPayload(token)
      self.joinRef = ref
      self.lastSystemError = undefined
      self.tokenSent = token
      self.joinPayload = Option.some(
        Option.isSome(token) ? { ...payload, access_token: "<redacted>" } as Protocol.JoinPayload : payload
      )
      self.syncer = Presence.makeSyncer()
      yield* self.setStatus(Channel.ChannelStatus.Joining({ attempt }))
      const timeout = self.joinTimeout
      const reply = yield* self.deps.transport.request(
        { joinRef: ref, ref, topic: self.topic, event: "phx_join", payload },
        { timeout }
      ).pipe(
        Effect.catchTag("PushTimeout", () => {
          // as realtime-js: leave the join that may still land, so the server holds no ghost
          self.joinRef = null
          return self.deps.transport.push({
            joinRef: ref,
            ref: self.deps.transport.makeRef(),
            topic: self.topic,
            event: "phx_leave",
            payload: {}
          }).pipe(
            Effect.ignore,
            Effect.zipRight(
              self.setStatus(Channel.ChannelStatus.TimedOut({ timeoutMillis: Duration.toMillis(timeout) }))
            ),
            Effect.zipRight(
              Effect.fail(new JoinTimeout({ topic: self.topic, timeoutMillis: Duration.toMillis(timeout) }))
            )
          )
        })
      )
      if (self.joinRef !== ref) {
        return yield* new ChannelClosed({ topic: self.topic, reason: "the join was superseded" })
      }
      if (reply.status !== "ok") {
        self.joinRef = null
        return yield* Effect.fail(joinRejected(self.topic, reply.response))
      }
      const serverBindings = (reply.response as { readonly postgres_changes?: unknown } | null)?.postgres_changes
      const matched = PostgresChanges.matchBindingIds(self.wireBindings, serverBindings)
      if (Either.isLeft(matched)) {
        self.joinRef = null
        yield* self.deps.transport.push({
          joinRef: ref,
          ref: self.deps.transport.makeRef(),
          topic: self.topic,
          event: "phx_leave",
          payload: {}
        }).pipe(Effect.ignore)
        return yield* Effect.fail(matched.left)
      }
      self.ids = Option.some(matched.right)
      yield* self.setStatus(Channel.ChannelStatus.Subscribed())
      // the server forgot this client's presence with the old join: track it again (the channel is
      // already Subscribed for everyone else meanwhile)
      if (self.tracked !== undefined) {
        yield* FiberHandle.run(
          self.retrackHandle,
          self.pushPresence({ type: "presence", event: "track", payload: self.tracked }, self.timeout).pipe(
            Effect.catchAll((error) =>
              Effect.logWarning("could not track presence again after the rejoin").pipe(
                Effect.annotateLogs({ topic: self.topic, error: error.message })
              )
            )
          )
        )
      }
    }).pipe(
      Effect.onExit((exit) =>
        Effect.sync(() => {
          const waiting = this.inflightJoin
          this.inflightJoin = undefined
          if (waiting !== undefined) Deferred.unsafeDone(waiting, exit)
        })
      ),
      Effect.annotateLogs({ topic: this.topic })
    )
  }

  private awaitSocketOpen = Effect.suspend(() =>
    this.deps.transport.stateChanges.pipe(
      Stream.filter((s) => s._tag === "Open"),
      Stream.take(1),
      Stream.runDrain
    )
  )

  private stop(reason: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.joinRef = null
      const waiting = this.inflightJoin
      this.inflightJoin = undefined
      if (waiting !== undefined) {
        Deferred.unsafeDone(waiting, Exit.fail(new ChannelClosed({ topic: this.topic, reason })))
      }
      return this.setStatus(Channel.ChannelStatus.Closed({ reason })).pipe(
        Effect.zipRight(Effect.logError("channel stopped").pipe(Effect.annotateLogs({ topic: this.topic, reason })))
      )
    })
  }

  private rejoinLoop(backoffFirst: boolean): Effect.Effect<void> {
    const self = this
    return Effect.gen(function*() {
      const backoff = Backoff.make(self.deps.rejoin)
      let failures = 0
      let attempt = 0
      let wait = backoffFirst
      while (true) {
        if (wait) {
          const delay = yield* backoff.next(undefined)
          if (Option.isNone(delay)) return yield* self.stop("the rejoin schedule ended")
          yield* self.setStatus(Channel.ChannelStatus.Rejoining({ attempt: attempt + 1, delay: delay.value }))
          yield* Effect.sleep(delay.value)
        }
        wait = true
        yield* self.awaitSocketOpen
        attempt++
        metrics.rejoins.unsafeUpdate(1, [])
        const exit = yield* Effect.exit(self.joinOnce(attempt))
        if (Exit.isSuccess(exit)) return
        const error = Cause.failureOption(exit.cause)
        if (Option.isNone(error)) return yield* self.stop("the rejoin was interrupted")
        if (error.value._tag === "SocketClosed") {
          // not a failure of the join: wait for the socket, then rejoin at once
          wait = false
          continue
        }
        if (isPermanent(error.value)) return yield* self.stop(error.value.message)
        failures++
        if (failures >= self.maxRejoinFailures) {
          return yield* self.stop(`gave up after ${failures} failed rejoins: ${error.value.message}`)
        }
        yield* Effect.logWarning("rejoin failed").pipe(
          Effect.annotateLogs({ attempt, error: error.value.message })
        )
      }
    }).pipe(Effect.annotateLogs({ topic: this.topic }))
  }

  private startRejoin(backoffFirst: boolean): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.subscribers === 0 || this.removed) return Effect.void
      return FiberHandle.run(this.rejoinHandle, this.rejoinLoop(backoffFirst), { onlyIfMissing: true }).pipe(
        Effect.asVoid
      )
    })
  }

  /** Resolves when joined (or fails with why not). */
  private ensureJoined(timeout: Duration.Duration): Effect.Effect<void, JoinFailure> {
    return Effect.suspend((): Effect.Effect<void, JoinFailure> => {
      const status = this.currentStatus
      if (status._tag === "Subscribed") return Effect.void
      if (this.inflightJoin !== undefined) return Deferred.await(this.inflightJoin)
      if (status._tag === "Idle" || (status._tag === "Closed" && this.subscribers <= 1)) {
        this.inflightJoin = Deferred.unsafeMake<void, JoinFailure>(FiberId.none)
        const waiting = this.inflightJoin
        // a socket that drops before the reply is no verdict on the join: send it again
        return this.joinOnce(0).pipe(
          Effect.retry({ while: (error) => error._tag === "SocketClosed" && this.subscribers > 0 }),
          Effect.zipRight(Deferred.await(waiting))
        )
      }
      // a rejoin is under way: wait for its outcome
      return this.statusChanges.pipe(
        Stream.filter((s) => s._tag === "Subscribed" || s._tag === "Closed"),
        Stream.runHead,
        Effect.flatMap((s) =>
          Option.isSome(s) && s.value._tag === "Closed"
            ? Effect.fail(new ChannelClosed({ topic: this.topic, reason: s.value.reason }))
            : Effect.void
        ),
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => new JoinTimeout({ topic: this.topic, timeoutMillis: Duration.toMillis(timeout) })
        })
      )
    })
  }

  // The bookkeeping is uninterruptible; the join itself is not (its timeout must be able to fire,
  // and a caller may give up on it).
  readonly subscribe: Effect.Effect<void, Channel.JoinError, Scope.Scope> = Effect.uninterruptibleMask((restore) =>
    Effect.gen(this, function*() {
      if (this.removed) return yield* new ChannelClosed({ topic: this.topic, reason: "the channel was removed" })
      yield* this.deps.register(this)
      this.subscribers++
      const exit = yield* Effect.exit(restore(this.ensureJoined(this.joinTimeout)))
      if (Exit.isFailure(exit)) {
        this.subscribers--
        if (this.subscribers === 0) {
          this.joinRef = null
          yield* this.setStatus(Channel.ChannelStatus.Closed({ reason: "the join failed" }))
          yield* this.deps.unregister(this)
        }
        return yield* exit
      }
      yield* Effect.addFinalizer(() =>
        Effect.suspend(() => {
          this.subscribers--
          return this.subscribers > 0 ? Effect.void : this.leave("left")
        })
      )
    })
  )

  /** Leaves the topic (if joined) and ends the channel's streams. */
  leave(reason: string): Effect.Effect<void> {
    return Effect.gen(this, function*() {
      yield* FiberHandle.clear(this.rejoinHandle)
      yield* FiberHandle.clear(this.retrackHandle)
      const joinRef = this.joinRef
      // Written now, never buffered nor awaited: closing a scope must not hang on a round trip, and
      // a socket that is not open has no join on the server to leave.
      if (joinRef !== null) {
        this.leaving = true
        yield* this.deps.transport.push(
          { joinRef, ref: this.deps.transport.makeRef(), topic: this.topic, event: "phx_leave", payload: {} },
          { buffer: false }
        ).pipe(Effect.ignore)
      }
      this.joinRef = null
      this.leaving = false
      this.tracked = undefined
      this.ids = Option.none()
      this.syncer = Presence.makeSyncer()
      const waiting = this.inflightJoin
      this.inflightJoin = undefined
      if (waiting !== undefined) {
        Deferred.unsafeDone(waiting, Exit.fail(new ChannelClosed({ topic: this.topic, reason })))
      }
      yield* this.setStatus(Channel.ChannelStatus.Closed({ reason }))
      yield* this.deps.unregister(this)
    }).pipe(Effect.uninterruptible)
  }

  /** Removed from the client: leave and end every stream. */
  remove(reason: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.removed = true
      this.subscribers = 0
      return this.leave(reason).pipe(Effect.zipRight(Effect.sync(() => this.endStreams())))
    })
  }

  private endStreams() {
    for (const set of this.broadcastListeners.values()) for (const m of set) m.unsafeDone(Exit.void)
    for (const l of this.postgresListeners) l.mailbox.unsafeDone(Exit.void)
    for (const m of this.systemListeners) m.unsafeDone(Exit.void)
    for (const m of this.presenceListeners) m.unsafeDone(Exit.void)
  }

  // ---------------------------------------------------------------------------
  // streams
  // ---------------------------------------------------------------------------

  private listen<A, B, E = never>(
    add: (mailbox: Listener<A>) => void,
    remove: (mailbox: Listener<A>) => void,
    f: (stream: Stream.Stream<A>) => Stream.Stream<B, E>
  ): Stream.Stream<B, E> {
    return Stream.unwrapScoped(
      Effect.gen(this, function*() {
        const mailbox = yield* Mailbox.make<A>({ capacity: this.bufferSize, strategy: "dropping" })
        if (this.removed) yield* mailbox.end
        const listener = new Listener(mailbox, this.onDropped)
        add(listener)
        yield* Effect.addFinalizer(() => Effect.sync(() => remove(listener)))
        return f(Mailbox.toStream(mailbox))
      })
    )
  }

  private decodeFailed(event: string, error: ParseResult.ParseError) {
    metrics.decodeFailures.unsafeUpdate(1, [])
    return Effect.logWarning("payload does not match the schema: skipped").pipe(
      Effect.annotateLogs({ topic: this.topic, event, error: ParseResult.TreeFormatter.formatErrorSync(error) })
    )
  }

  readonly broadcast: Channel.RealtimeChannel["broadcast"] = (
    eventOrDefinition: string | Channel.BroadcastEvent<any, any>,
    maybeSchema?: Schema.Schema<any, any>
  ): Stream.Stream<Channel.Broadcast<any>> => {
    const event = typeof eventOrDefinition === "string" ? eventOrDefinition : eventOrDefinition.event
    const schema = typeof eventOrDefinition === "string" ? maybeSchema : eventOrDefinition.schema
    const key = event === "*" ? "*" : event.toLowerCase()
    return this.listen<Channel.Broadcast<unknown>, Channel.Broadcast<unknown>>(
      (mailbox) => {
        const listeners = this.broadcastListeners.get(key)
        if (listeners === undefined) this.broadcastListeners.set(key, [mailbox])
        else listeners.push(mailbox)
      },
      (mailbox) => {
        const listeners = this.broadcastListeners.get(key)
        const i = listeners === undefined ? -1 : listeners.indexOf(mailbox)
        if (i < 0) return
        listeners!.splice(i, 1)
        if (listeners!.length === 0) this.broadcastListeners.delete(key)
      },
      (stream) => {
        // the mailbox already holds `Broadcast`s: no per-element work without a schema
        if (schema === undefined) return stream
        const decode = Schema.decodeUnknownEither(schema)
        return Stream.mapChunksEffect(stream, (chunk) => {
          const out: Array<Channel.Broadcast<unknown>> = []
          let failures: Array<Effect.Effect<void>> | undefined
          for (const b of chunk) {
            const decoded = decode(b.payload)
            if (decoded._tag === "Right") out.push({ event: b.event, payload: decoded.right, meta: b.meta })
            else (failures ??= []).push(this.decodeFailed(b.event, decoded.left))
          }
          const result = Chunk.unsafeFromArray(out)
          return failures === undefined ? Effect.succeed(result) : Effect.as(Effect.all(failures), result)
        })
      }
    )
  }

  readonly system: Stream.Stream<Channel.SystemMessage> = this.listen<Channel.SystemMessage, Channel.SystemMessage>(
    (mailbox) => this.systemListeners.add(mailbox),
    (mailbox) => this.systemListeners.delete(mailbox),
    (stream) => stream
  )

  readonly postgresChanges: Channel.RealtimeChannel["postgresChanges"] = (
    binding?: PostgresChanges.Binding,
    schema?: Schema.Schema<any, any>
  ): Stream.Stream<PostgresChanges.Change<any>, InvalidArgument> => {
    let index = -1
    if (binding !== undefined) {
      const wanted = JSON.stringify(canonical(PostgresChanges.toWire(binding)))
      index = this.wireBindings.findIndex((b) => JSON.stringify(canonical(b)) === wanted)
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
    const decodeRow = schema === undefined ? undefined : Schema.decodeUnknownEither(schema)
    const decodeOld = schema === undefined ? undefined : Schema.decodeUnknownEither(Schema.partial(schema))
    const int8 = this.deps.int8
    return this.listen<unknown, PostgresChanges.Change<any>>(
      (mailbox) => this.postgresListeners.add({ index, mailbox }),
      (mailbox) => {
        for (const l of this.postgresListeners) if (l.mailbox === mailbox) this.postgresListeners.delete(l)
      },
      (stream) =>
        Stream.mapChunksEffect(stream, (chunk) => {
          const out: Array<PostgresChanges.Change<any>> = []
          let failures: Array<Effect.Effect<void>> | undefined
          for (const payload of chunk) {
            const change = PostgresChanges.convertChange((payload as { readonly data: unknown }).data, { int8 })
            if (Either.isLeft(change)) {
              ;(failures ??= []).push(
                Effect.logWarning("malformed postgres_changes payload: skipped").pipe(
                  Effect.annotateLogs({ topic: this.topic, error: change.left.message })
                )
              )
              continue
            }
            if (decodeRow === undefined) {
              out.push(change.right)
              continue
            }
            const c = change.right
            const row = c.eventType === "DELETE" ? Either.right({}) : decodeRow(c.new)
            const old = c.eventType === "INSERT" ? Either.right({}) : decodeOld!(c.old)
            if (Either.isLeft(row)) (failures ??= []).push(this.decodeFailed(`postgres_changes ${c.table}`, row.left))
            else if (Either.isLeft(old)) {
              ;(failures ??= []).push(this.decodeFailed(`postgres_changes ${c.table}`, old.left))
            } else out.push({ ...c, new: row.right, old: old.right } as PostgresChanges.Change<any>)
          }
          const result = Chunk.unsafeFromArray(out)
          return failures === undefined ? Effect.succeed(result) : Effect.as(Effect.all(failures), result)
        })
    )
  }

  readonly presence: Channel.RealtimeChannel["presence"] = (
    schema?: Schema.Schema<any, any>
  ): Channel.PresenceView<any> => {
    if (this.currentStatus._tag === "Idle") this.presenceEnabled = true
    const decode = schema === undefined ? undefined : Schema.decodeUnknownEither(schema)
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
    const raw = this.listen<
      ReadonlyArray<Presence.PresenceEvent> | Presence.PresenceState,
      ReadonlyArray<Presence.PresenceEvent> | Presence.PresenceState
    >(
      (mailbox) => this.presenceListeners.add(mailbox),
      (mailbox) => this.presenceListeners.delete(mailbox),
      (stream) => stream
    )
    return {
      state: Effect.sync(() => snapshot(this.syncer.state)),
      changes: Stream.concat(
        Stream.sync(() => snapshot(this.syncer.state)),
        raw.pipe(Stream.filter((item): item is Presence.PresenceState => item instanceof Map), Stream.map(snapshot))
      ),
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

  private awaitJoinedForPush(timeout: Duration.Duration): Effect.Effect<string, ChannelClosed | JoinTimeout> {
    return Effect.suspend(() => {
      if (this.currentStatus._tag === "Subscribed" && this.joinRef !== null) return Effect.succeed(this.joinRef)
      if (this.removed || this.subscribers === 0) {
        return Effect.fail(
          new ChannelClosed({ topic: this.topic, reason: "not subscribed: call subscribe before sending" })
        )
      }
      return this.statusChanges.pipe(
        Stream.filter((s) => s._tag === "Subscribed" || s._tag === "Closed"),
        Stream.runHead,
        Effect.flatMap((s) =>
          Option.isSome(s) && s.value._tag === "Subscribed" && this.joinRef !== null
            ? Effect.succeed(this.joinRef)
            : Effect.fail(new ChannelClosed({ topic: this.topic, reason: "the channel closed before it joined" }))
        ),
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => new JoinTimeout({ topic: this.topic, timeoutMillis: Duration.toMillis(timeout) })
        })
      )
    })
  }

  readonly send: Channel.RealtimeChannel["send"] = (
    eventOrDefinition: string | Channel.BroadcastEvent<any, any>,
    value: unknown,
    options?: Channel.SendOptions
  ): Effect.Effect<void, Channel.SendError> => {
    const self = this
    return Effect.gen(function*() {
      let event: string
      let payload: unknown
      if (typeof eventOrDefinition === "string") {
        event = eventOrDefinition
        payload = value
      } else {
        event = eventOrDefinition.event
        payload = yield* Schema.encodeUnknown(eventOrDefinition.schema)(value).pipe(
          Effect.mapError((error) =>
            new InvalidArgument({
              detail: `payload of '${event}' does not match its schema: ${
                ParseResult.TreeFormatter.formatErrorSync(error)
              }`
            })
          )
        )
      }
      const timeout = options?.timeout === undefined ? self.timeout : Duration.decode(options.timeout)
      if (options?.persist !== undefined && self.deps.transport.vsn === "1.0.0") {
        return yield* new InvalidArgument({ detail: "persist needs protocol vsn 2.0.0" })
      }
      const joined = self.currentStatus._tag === "Subscribed" && self.joinRef !== null
      if (!joined && self.httpFallback && Option.isSome(self.deps.httpBroadcast)) {
        return yield* self.deps.httpBroadcast.value.send(self.name.replace(/^realtime:/, ""), event, payload, {
          private: self.config.private ?? false,
          persist: options?.persist,
          timeout
        })
      }
      const joinRef = yield* self.awaitJoinedForPush(timeout).pipe(
        Effect.catchTag(
          "JoinTimeout",
          (e) =>
            Effect.fail(new ChannelClosed({ topic: self.topic, reason: `not joined within ${e.timeoutMillis} ms` }))
        )
      )
      const body: Record<string, unknown> = { type: "broadcast", event, payload }
      if (options?.persist !== undefined) body.persist = options.persist
      const message: Protocol.Message = {
        joinRef,
        ref: self.deps.transport.makeRef(),
        topic: self.topic,
        event: "broadcast",
        payload: body
      }
      if (!(self.config.broadcast?.ack ?? false)) return yield* self.deps.transport.push(message)
      const reply = yield* self.deps.transport.request(message, { timeout })
      if (reply.status === "ok") return
      if (reply.response === "payload_size_exceeded") return yield* new PayloadTooLarge({ topic: self.topic, event })
      return yield* new PushRejected({ topic: self.topic, event, response: reply.response })
    })
  }

  private pushPresence(payload: object, timeout: Duration.Duration) {
    return Effect.gen(this, function*() {
      const joinRef = yield* this.awaitJoinedForPush(timeout).pipe(
        Effect.catchTag(
          "JoinTimeout",
          (e) =>
            Effect.fail(new ChannelClosed({ topic: this.topic, reason: `not joined within ${e.timeoutMillis} ms` }))
        )
      )
      const reply = yield* this.deps.transport.request({
        joinRef,
        ref: this.deps.transport.makeRef(),
        topic: this.topic,
        event: "presence",
        payload
      }, { timeout })
      if (reply.status !== "ok") {
        return yield* new PushRejected({ topic: this.topic, event: "presence", response: reply.response })
      }
    })
  }

  readonly track: Channel.RealtimeChannel["track"] = (meta, options) =>
    Effect.suspend((): ReturnType<Channel.RealtimeChannel["track"]> => {
      if (typeof meta !== "object" || meta === null || Array.isArray(meta)) {
        return Effect.fail(new InvalidArgument({ detail: "track: the presence meta must be an object" }))
      }
      if (this.currentStatus._tag === "Idle") this.presenceEnabled = true
      this.tracked = meta
      const timeout = options?.timeout === undefined ? this.timeout : Duration.decode(options.timeout)
      return this.pushPresence({ type: "presence", event: "track", payload: meta }, timeout)
    })

  readonly untrack: Channel.RealtimeChannel["untrack"] = (options) =>
    Effect.suspend(() => {
      this.tracked = undefined
      const timeout = options?.timeout === undefined ? this.timeout : Duration.decode(options.timeout)
      return this.pushPresence({ type: "presence", event: "untrack" }, timeout)
    })

  readonly bindingIds = Effect.sync(() => this.ids)
  readonly lastJoinPayload = Effect.sync(() => this.joinPayload)
}

/** @internal */
export const make = (
  name: string,
  config: Channel.ChannelConfig,
  options: Channel.ChannelOptions,
  deps: Deps
): Effect.Effect<ChannelImpl, InvalidArgument, Scope.Scope> =>
  Effect.gen(function*() {
    if (name.length === 0 || name === "realtime:") {
      return yield* new InvalidArgument({ detail: "a channel needs a topic name" })
    }
    if (config.broadcast?.replay !== undefined && !config.private) {
      return yield* new InvalidArgument({
        detail: `tried to use replay on public channel '${topicOf(name)}'. It must be a private channel.`
      })
    }
    for (const binding of config.postgresChanges ?? []) {
      const wire = PostgresChanges.toWireEither(binding)
      if (Either.isLeft(wire)) return yield* wire.left
    }
    const status = yield* SubscriptionRef.make<Channel.ChannelStatus>(Channel.ChannelStatus.Idle())
    const rejoin = yield* FiberHandle.make<void, never>()
    const retrack = yield* FiberHandle.make<void, never>()
    return new ChannelImpl(name, config, options, deps, status, rejoin, retrack)
  })
