/**
 * A channel without Effect: the shell of the state machine (`state.ts`) — it carries out the
 * machine's commands and feeds it what happens — with the channel's status, its catch-up after a
 * rejoin, and who listens to it; every inbound frame is routed by `inbound.ts`. Each edition extends
 * it with what needs its Effect: fibers for the timers, the join's write and wait, the streams, sends.
 *
 * Creating one allocates no fiber, scope or Effect: the status is a field with plain listeners,
 * timers exist only while they run, and what the machine needs from its channel is one small object
 * on a prototype (a thousand channels otherwise carry 1.5 MB of closures).
 */
import * as Bindings from "../postgres/bindings.js"
import * as Sync from "../presence/sync.js"
import type * as Model from "../protocol/model.js"
import * as Topic from "../topic.js"
import * as Config from "./config.js"
import * as Inbound from "./inbound.js"
import * as Listeners from "./listeners.js"
import * as Outbound from "./outbound.js"
import * as PresenceItems from "./presence.js"
import * as Replay from "./replay.js"
import * as State from "./state.js"
import * as Token from "./token.js"

/** What the shell needs from its client (the edition's `Deps` has more). */
export interface Deps {
  /** The client's clock, in milliseconds. */
  readonly now: () => number
  /** When the socket was last known alive (opened, or answered a heartbeat). */
  readonly aliveAt: () => number
  /** A channel became subscribed (+1) or stopped being (-1). */
  readonly activeChanged: (delta: 1 | -1) => void
  readonly transport: {
    readonly makeRef: () => string
    readonly unsafeIsOpen: () => boolean
    readonly unsafePush: (message: Model.Message) => unknown
  }
}

/** The edition's types a shell works with. */
export interface Types {
  /** Why a join failed (the edition's `JoinError`). */
  readonly error: { readonly _tag: string; readonly message: string }
  /** The public status (the edition's `ChannelStatus`). */
  readonly status: { readonly _tag: string }
  /** What a gap stream emits (the edition's `Gap`). */
  readonly gap: unknown
  /** A running timer (the edition's fiber). */
  readonly timer: unknown
  readonly config: Config.ChannelConfig
  readonly deps: Deps
}

/** The options the shell reads (the edition's `ChannelOptions` is assignable to it). */
export interface Options {
  readonly bufferSize?: number | undefined
  readonly maxRejoinFailures?: number | undefined
  readonly httpFallback?: boolean | undefined
}

/** The channel's counters, each a metric of the edition's. */
export type Metric = "stale" | "dropped" | "duplicates" | "rejoins"

/** The log lines a shell writes. */
export type LogLevel = "Info" | "Warning"

const initialSyncer = Sync.makeSyncer()

/** What a socket event means for a channel (built once per event by the client, for every channel). */
export const socketFailure = <E extends { readonly message: string }>(
  error: E,
  permanent: boolean
): State.Failure<E> => ({ error, reason: error.message, permanent })

const noop = () => {}

/** What the state machine needs from its channel, on a prototype (see the module's note). */
class MachineEnv implements State.Env {
  constructor(private readonly channel: ChannelShell<any>) {}
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
    return this.channel.stableMillis
  }
  patienceMillis(): number {
    return this.channel.patienceMillis
  }
  held(): boolean {
    return this.channel.held
  }
}

/**
 * The Effect-free part of a channel (see the module's note). Its fields are the edition's to read
 * (the edition's modules are functions of the channel); the abstract members are what it supplies.
 */
export abstract class ChannelShell<T extends Types> {
  readonly topic: string
  readonly key: string

  machine: State.Machine<T["error"]>
  /** The current join's ref (the machine's, cached for the per-frame check). */
  joinRef: string | null = null
  subscribers = 0
  /** Subscribes waiting for their join. */
  waiting = 0
  removed = false
  currentStatus: T["status"]
  statusInboxes: ReadonlyArray<Listeners.Mailbox<T["status"]>> | undefined
  gapInboxes: ReadonlyArray<Listeners.Mailbox<T["gap"]>> | undefined
  /** Events that arrive while a step's commands run are handled after it, in order. */
  dispatching = false
  readonly queued: Array<State.Event<T["error"]>> = []
  /** The token fetch the last step asked for, by its ticket (set by `FetchToken`; run inline or forked). */
  tokenWanted: number | undefined
  /** Token fetches asked for so far: the ticket of the latest, the only one the join takes (`token.ts`). */
  tokenFetches = 0
  /** The join attempt of the latest token fetch. */
  tokenAttempt = 0
  /** The token the next join carries (the one its fetch brought). */
  token: string | undefined
  /** The token the server has for the current join: sent with it, or pushed after it. */
  tokenSent: string | undefined
  /** The token changed while the channel was not joined: the join that lands may lack it. */
  tokenChanged = false
  /** Forgets the pending join's reply (set while a join is on the wire). */
  forgetJoin: (() => void) | undefined
  timer: T["timer"] | undefined
  /** A waiting subscribe's deadline (armed at its first failure), and how long it waits at most. */
  deadline: T["timer"] | undefined
  patience: number | undefined
  readonly env: State.Env
  lastSystemError: string | undefined
  /** Pushes waiting for a reply on the current join, failed at once when the server ends it. */
  // a set, not a copy-on-write array: thousands of waits (sends during a join) stay linear; `lost`
  // detaches it before calling them
  lossWaiters: Set<(reason: string) => void> | undefined
  /** The server's ids of the bindings, per binding (set by the join). */
  matchedIds: ReadonlyArray<ReadonlyArray<number>> | undefined
  tracked: object | undefined
  syncer = initialSyncer
  presenceEnabled: boolean
  readonly wireBindings: ReadonlyArray<Bindings.WireBinding>
  readonly bufferSize: number
  readonly maxRejoinFailures: number
  readonly httpFallback: boolean
  // arrays, not Sets: iterating a Set allocates per frame; "*" is looked up once per frame
  readonly broadcastListeners = new Map<string, ReadonlyArray<Listeners.Sink<Listeners.BroadcastItem>>>()
  postgresListeners: ReadonlyArray<Listeners.PostgresEntry> | undefined
  systemListeners: ReadonlyArray<Listeners.Sink<Listeners.SystemItem>> | undefined
  presenceListeners: ReadonlyArray<Listeners.Sink<PresenceItems.Item>> | undefined
  dropsLogged = 0
  /** Frames of the topic the channel could not use (see `Inbound.ignored`). */
  readonly ignoredLog: Inbound.IgnoredLog = { total: 0, unlogged: 0, loggedAt: -Infinity }
  /** The server's errors subscribing the Postgres changes (logged as `ignoredLog`; made at the first). */
  postgresErrorLog: Inbound.IgnoredLog | undefined
  /** When the channel last lost a join it held (cleared when it leaves): the next join is a rejoin. */
  lostAt: number | undefined
  /**
   * Where the next rejoin's replay starts: when the socket was last known alive before the loss
   * (kept from the first loss when the join is lost again during a catch-up).
   */
  replayFrom: number | undefined
  /** After a rejoin with replay: the replayed broadcasts are counted until they end. */
  catchUp: Replay.CatchUp<T["timer"]> | undefined
  /** Ids of broadcasts received lately (replay enabled only): a replay never delivers one twice. */
  readonly seen: Replay.RecentIds | undefined

  constructor(
    readonly name: string,
    readonly config: T["config"],
    options: Options,
    readonly deps: T["deps"],
    key?: string
  ) {
    this.topic = Topic.topicOf(name)
    this.key = key ?? Config.configKey(config)
    const bindings = config.postgresChanges ?? []
    this.wireBindings = bindings.length === 0 ? [] : bindings.map(Bindings.toWire)
    this.presenceEnabled = config.presence?.enabled ?? config.presence !== undefined
    this.bufferSize = options.bufferSize ?? 65_536
    this.maxRejoinFailures = options.maxRejoinFailures ?? 10
    this.httpFallback = options.httpFallback ?? true
    this.seen = config.broadcast?.replay === undefined ? undefined : new Replay.RecentIds(1_024)
    this.machine = State.initial(deps.transport.unsafeIsOpen())
    this.env = new MachineEnv(this)
    this.currentStatus = this.makeStatus({ _tag: "Idle" }, undefined)
  }

  // ---------------------------------------------------------------------------
  // what the edition supplies
  // ---------------------------------------------------------------------------

  /** The next rejoin delay (the schedule is stepped only once a channel needs one). */
  abstract nextDelay(): number | undefined
  /** Starts the rejoin schedule over. */
  abstract resetDelay(): void
  /** How long a join must hold before losing it no longer counts as a failure. */
  abstract get stableMillis(): number
  /** The longest a subscribe waits (see `State.Env.patienceMillis`). */
  abstract computePatience(): number
  /** The public status of a machine status. */
  abstract makeStatus(status: State.Status, downtimeMillis: number | undefined): T["status"]
  /** The same public status (shown once). */
  abstract sameStatus(a: T["status"], b: T["status"]): boolean
  /** What a gap stream emits. */
  abstract makeGap(downtimeMillis: number, replayed: number, reason: string): T["gap"]
  /**
   * Runs what wakes waiters and status and gap streams: at once, or (Effect 4) from a microtask,
   * in order, so that no fiber runs in the middle of a step or of the read loop.
   */
  abstract later(f: () => void): void
  /** Starts a timer; when it fires, `fire` says what to dispatch (if anything). */
  abstract startTimer(delayMillis: number, fire: () => State.Event<T["error"]> | undefined): T["timer"]
  abstract stopTimer(timer: T["timer"]): void
  /** The token source's token now: the last one fetched, or one set by hand since. */
  abstract currentToken(): string | undefined
  /** Runs the token fetch `ticket` in a fiber of its own, then calls `tokenFetched`. */
  abstract fetchTokenDetached(ticket: number): void
  /** Writes the join (setting `forgetJoin`); its reply comes back through `onJoinReply`. */
  abstract writeJoin(joinRef: string): void
  /** Resolves whoever waits for the join. */
  abstract settle(outcome: State.Outcome<T["error"]>): void
  /** Tracks the presence `meta` again (after a rejoin: the server forgot it with the old join). */
  abstract retrack(meta: object): void
  abstract count(metric: Metric, n: number): void
  abstract log(level: LogLevel, message: string, annotations: { readonly [key: string]: unknown }): void
  /** The edition's `ChannelClosed` for this channel. */
  abstract closedError(reason: string): T["error"]
  /** The edition's `JoinTimeout` for this channel. */
  abstract joinTimeoutError(timeoutMillis: number): T["error"]
  /** The edition's refusal of a join from the server's error reply. */
  abstract rejectedError(response: unknown): T["error"]
  /** The edition's `PostgresBindingMismatch`. */
  abstract mismatchError(detail: string): T["error"]
  /** How the edition builds presence events. */
  abstract get presenceEvents(): Sync.Constructors

  /** Runs after each dispatch, once its steps have all run (the edition may wake waiters then). */
  stepped(): void {}

  // ---------------------------------------------------------------------------
  // subscribers
  // ---------------------------------------------------------------------------

  /** The longest a subscribe waits, computed once. */
  get patienceMillis(): number {
    return this.patience ??= this.computePatience()
  }

  /** Someone holds the channel from a subscribe that joined. */
  get held(): boolean {
    return this.subscribers > this.waiting
  }

  /** Counts a subscription; the client learns when the channel becomes active or idle. */
  addSubscriber(): void {
    if (this.subscribers++ === 0) this.deps.activeChanged(1)
  }

  /** A subscription ended. */
  dropSubscriber(): void {
    if (this.subscribers > 0 && --this.subscribers === 0) this.deps.activeChanged(-1)
  }

  /** Removed from the client: no one holds it any more. */
  markRemoved(): void {
    this.removed = true
    if (this.subscribers > 0) {
      this.subscribers = 0
      this.deps.activeChanged(-1)
    }
  }

  /** What a log line or `JSON.stringify` shows of a channel: its topic and status, never its token. */
  toJSON(): unknown {
    return { _id: "RealtimeChannel", topic: this.topic, status: this.currentStatus }
  }

  /** Presence is asked for before the first join: the join enables it. */
  wantPresence(): void {
    if (this.currentStatus._tag === "Idle") this.presenceEnabled = true
  }

  // ---------------------------------------------------------------------------
  // status and catch-up
  // ---------------------------------------------------------------------------

  /** Subscribed again after `downtimeMillis` without a join: say so, once replay (if any) ended. */
  rejoined(downtimeMillis: number): void {
    this.lostAt = undefined
    this.finishCatchUp("rejoined again before the replay ended")
    const replay = this.config.broadcast?.replay
    this.log("Info", "channel rejoined", { topic: this.topic, downtimeMs: downtimeMillis })
    if (replay === undefined) return this.emitGap(downtimeMillis, 0, "no replay: broadcasts sent meanwhile are lost")
    const limit = Math.max(1, Math.min(replay.limit ?? Replay.REPLAY_LIMIT, Replay.REPLAY_LIMIT))
    // the server pushes the replayed broadcasts after its reply (live ones may come first): they
    // have ended at the limit, or once none came for a second
    const catchUp: Replay.CatchUp<T["timer"]> = {
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
  armSettle(catchUp: Replay.CatchUp<T["timer"]>): void {
    if (catchUp.timer !== undefined) this.stopTimer(catchUp.timer)
    const timer = this.startTimer(Replay.REPLAY_SETTLE_MILLIS, () => {
      if (catchUp.timer === timer) catchUp.timer = undefined
      if (this.catchUp === catchUp) this.finishCatchUp(undefined)
      return undefined
    })
    catchUp.timer = timer
  }

  /** The replay of the last rejoin has ended (or was cut short, `cut` says why): emit its gap. */
  finishCatchUp(cut: string | undefined): void {
    const catchUp = this.catchUp
    if (catchUp === undefined) return
    this.catchUp = undefined
    this.replayFrom = undefined
    if (catchUp.timer !== undefined) this.stopTimer(catchUp.timer)
    catchUp.timer = undefined
    this.emitGap(
      catchUp.downtimeMillis,
      catchUp.replayed,
      cut ?? Replay.gapReason(catchUp, this.wireBindings.length > 0)
    )
  }

  emitGap(downtimeMillis: number, replayed: number, reason: string): void {
    const inboxes = this.gapInboxes
    if (inboxes === undefined) return
    const gap = this.makeGap(downtimeMillis, replayed, reason)
    this.later(() => {
      for (let i = 0; i < inboxes.length; i++) inboxes[i]!.offer(gap, true)
    })
  }

  setStatus(status: T["status"]): void {
    if (this.sameStatus(status, this.currentStatus)) return
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
      this.later(() => {
        for (let i = 0; i < inboxes.length; i++) inboxes[i]!.offer(status, true)
      })
    }
  }

  // ---------------------------------------------------------------------------
  // the state machine's shell
  // ---------------------------------------------------------------------------

  /** Feeds the machine an event and carries out its commands (re-entrant calls are queued). */
  dispatch(event: State.Event<T["error"]>): void {
    if (this.dispatching) {
      this.queued.push(event)
      return
    }
    this.dispatching = true
    try {
      let next: State.Event<T["error"]> | undefined = event
      while (next !== undefined) {
        const { commands, machine } = State.step(this.machine, next, this.env)
        this.machine = machine
        this.joinRef = State.joinRefOf(machine.state) ?? null
        for (let i = 0; i < commands.length; i++) this.run(commands[i]!)
        next = this.queued.shift()
      }
    } finally {
      this.dispatching = false
      this.stepped()
    }
  }

  /** Dispatches from a callback (no fiber at hand): a token fetch it wants runs in a fiber of its own. */
  dispatchSync(event: State.Event<T["error"]>): void {
    this.dispatch(event)
    const ticket = this.takeTokenFetch()
    if (ticket !== undefined) this.fetchTokenDetached(ticket)
  }

  /** The token fetch the last step asked for (never a token-less join while a fetch is pending). */
  takeTokenFetch(): number | undefined {
    const ticket = this.tokenWanted
    this.tokenWanted = undefined
    return ticket
  }

  /** The token fetch `ticket` brought `token`: the join goes on with it if it is the latest fetch. */
  tokenFetched(ticket: number, token: string | undefined): void {
    Token.fetched(this, ticket, token)
  }

  /** The source's token changed: a joined channel tells the server now, a joining one once joined. */
  onTokenChanged(): void {
    Token.changed(this)
  }

  run(command: State.Command<T["error"]>): void {
    switch (command._tag) {
      case "Status":
        return this.setStatus(
          this.makeStatus(command.status, this.lostAt === undefined ? undefined : this.deps.now() - this.lostAt)
        )
      case "FetchToken":
        return Token.want(this, command.attempt)
      case "WriteJoin":
        if (command.attempt > 0) this.count("rejoins", 1)
        return this.writeJoin(command.joinRef)
      case "WriteLeave": {
        this.forgetJoin?.()
        this.forgetJoin = undefined
        return this.pushLeave(command.joinRef)
      }
      case "ArmTimer": {
        this.cancelTimer()
        const timer = this.startTimer(command.delayMillis, () => {
          if (this.timer === timer) this.timer = undefined
          return { _tag: "TimerFired" }
        })
        this.timer = timer
        return
      }
      case "CancelTimer":
        return this.cancelTimer()
      case "ArmDeadline": {
        this.cancelDeadline()
        const patience = this.patienceMillis
        const deadline = this.startTimer(command.delayMillis, () => {
          if (this.deadline === deadline) this.deadline = undefined
          return {
            _tag: "DeadlineFired",
            failure: {
              error: this.joinTimeoutError(patience),
              reason: `no join within ${patience} ms`,
              permanent: false,
              timeoutMillis: patience
            }
          }
        })
        this.deadline = deadline
        return
      }
      case "CancelDeadline":
        return this.cancelDeadline()
      case "Settle":
        return this.settle(command.outcome)
      case "Joined": {
        // a token set while the join was on the wire reaches the server now
        Token.joined(this)
        // the server forgot this client's presence with the old join: track it again
        if (this.tracked !== undefined) this.retrack(this.tracked)
        if (this.lostAt !== undefined) this.rejoined(this.deps.now() - this.lostAt)
        return
      }
    }
  }

  cancelTimer(): void {
    const timer = this.timer
    if (timer === undefined) return
    this.timer = undefined
    this.stopTimer(timer)
  }

  cancelDeadline(): void {
    const deadline = this.deadline
    if (deadline === undefined) return
    this.deadline = undefined
    this.stopTimer(deadline)
  }

  /** Writes a `phx_leave` for the join `joinRef` (never buffered, never awaited). */
  pushLeave(joinRef: string): void {
    this.deps.transport.unsafePush(
      Outbound.message(this.topic, joinRef, this.deps.transport.makeRef(), "phx_leave", {})
    )
  }

  /** The join payload to write, with `token` (a rejoin's replay starts where the loss began). */
  joinPayload(token: string | undefined): Config.WireJoinPayload<Bindings.WireBinding> {
    const replay = this.config.broadcast?.replay
    return Config.joinPayload(this.config, {
      wireBindings: this.wireBindings,
      presenceEnabled: this.presenceEnabled,
      token,
      replaySince: replay === undefined || this.replayFrom === undefined
        ? replay?.since
        : Replay.since(replay.since, this.replayFrom)
    })
  }

  // ---------------------------------------------------------------------------
  // the join's outcome
  // ---------------------------------------------------------------------------

  /** The join `joinRef` got no reply within `timeoutMillis`. */
  joinTimedOut(joinRef: string, timeoutMillis: number): void {
    this.dispatchSync({
      _tag: "JoinFailed",
      joinRef,
      failure: {
        error: this.joinTimeoutError(timeoutMillis),
        reason: `no reply to the join within ${timeoutMillis} ms`,
        permanent: false,
        timeoutMillis
      }
    })
  }

  /** The join `joinRef` could not be written or read: retrying will not help. */
  joinBroken(joinRef: string, error: T["error"]): void {
    this.dispatchSync({ _tag: "JoinFailed", joinRef, failure: { error, reason: error.message, permanent: true } })
  }

  /** The server replied to the join `joinRef`. */
  joinReplied(joinRef: string, status: string, response: unknown): void {
    if (status !== "ok") {
      const rejected = this.rejectedError(response)
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
    const serverBindings = (response as { readonly postgres_changes?: unknown } | null)?.postgres_changes
    const matched = Bindings.matchBindingIds(this.wireBindings, serverBindings)
    if (!matched.ok) {
      this.pushLeave(joinRef)
      return this.joinBroken(joinRef, this.mismatchError(matched.error))
    }
    this.matchedIds = matched.value
    this.dispatchSync({ _tag: "JoinOk", joinRef })
  }

  /** The server ended the current join. */
  lost(joinRef: string, reason: string): void {
    this.lastSystemError = undefined
    // the server closes a channel whose tracked meta is too large: tracking it again after the
    // rejoin would close it again, forever
    if (reason.includes(Config.TRACK_TOO_LARGE)) this.tracked = undefined
    const waiters = this.lossWaiters
    this.lossWaiters = undefined
    if (waiters !== undefined) {
      this.later(() => {
        for (const fail of waiters) fail(reason)
      })
    }
    this.log("Warning", "channel lost its join", { topic: this.topic, reason })
    this.dispatchSync({
      _tag: "Lost",
      joinRef,
      failure: { error: this.closedError(reason), reason, permanent: false }
    })
  }

  /** Called by the client on every change of the connection (`down`: not open any more). */
  onSocket(down: State.Failure<T["error"]> | undefined): void {
    if (this.removed) return
    this.dispatchSync(down === undefined ? { _tag: "SocketOpen" } : { _tag: "SocketDown", failure: down })
  }

  /** The channel leaves: the machine, the join on the wire, the presence, the binding ids. */
  leaveNow(reason: string): void {
    this.dispatch({ _tag: "Leave", reason })
    this.forgetJoin?.()
    this.forgetJoin = undefined
    this.tokenWanted = undefined
    this.tracked = undefined
    this.matchedIds = undefined
    this.clearPresence()
  }

  /** The channel left: whoever was present leaves (a `Leave` per key, then the empty state). */
  clearPresence(): void {
    const state = this.syncer.state
    this.syncer = initialSyncer
    const listeners = this.presenceListeners
    if (state.size === 0 || listeners === undefined || listeners.length === 0) return
    const events = PresenceItems.leaveAll(state, this.presenceEvents)
    for (const listener of listeners) {
      listener.unsafeOffer(events)
      listener.unsafeOffer(initialSyncer.state)
    }
  }

  /** Ends every stream, after what was told them before (the `Closed` status) has reached them. */
  endStreams(): void {
    const broadcast = [...this.broadcastListeners.values()]
    const postgres = this.postgresListeners ?? []
    const system = this.systemListeners ?? []
    const presence = this.presenceListeners ?? []
    const statuses = this.statusInboxes ?? []
    const gaps = this.gapInboxes ?? []
    this.later(() => {
      for (const set of broadcast) for (const l of set) l.end()
      for (const l of postgres) l.listener.end()
      for (const l of system) l.end()
      for (const l of presence) l.end()
      for (const inbox of statuses) inbox.end()
      for (const inbox of gaps) inbox.end()
    })
  }

  // ---------------------------------------------------------------------------
  // who listens
  // ---------------------------------------------------------------------------

  /** Connects a status stream: the current status first; ended at once when the channel is removed. */
  listenStatus(inbox: Listeners.Mailbox<T["status"]>): () => void {
    inbox.offer(this.currentStatus, true)
    if (this.removed) {
      inbox.end()
      return noop
    }
    this.statusInboxes = Listeners.adding(this.statusInboxes, inbox)
    return () => {
      this.statusInboxes = Listeners.without(this.statusInboxes, inbox)
    }
  }

  /** Connects a gap stream; ended at once when the channel is removed. */
  listenGaps(inbox: Listeners.Mailbox<T["gap"]>): () => void {
    if (this.removed) {
      inbox.end()
      return noop
    }
    this.gapInboxes = Listeners.adding(this.gapInboxes, inbox)
    return () => {
      this.gapInboxes = Listeners.without(this.gapInboxes, inbox)
    }
  }

  /** Connects a broadcast stream to `key` (a lower-cased event, or `*`). */
  listenBroadcast(key: string, listener: Listeners.Sink<Listeners.BroadcastItem>): () => void {
    this.broadcastListeners.set(key, Listeners.adding(this.broadcastListeners.get(key), listener))
    return () => {
      const listeners = Listeners.without(this.broadcastListeners.get(key), listener)
      if (listeners === undefined) this.broadcastListeners.delete(key)
      else this.broadcastListeners.set(key, listeners)
    }
  }

  /** Connects a Postgres changes stream to the binding `index` (`-1`: every binding). */
  listenPostgres(index: number, listener: Listeners.Sink<unknown>): () => void {
    const entry: Listeners.PostgresEntry = { index, listener }
    this.postgresListeners = Listeners.adding(this.postgresListeners, entry)
    return () => {
      this.postgresListeners = Listeners.without(this.postgresListeners, entry)
    }
  }

  /** Connects a `system` stream. */
  listenSystem(listener: Listeners.Sink<Listeners.SystemItem>): () => void {
    this.systemListeners = Listeners.adding(this.systemListeners, listener)
    return () => {
      this.systemListeners = Listeners.without(this.systemListeners, listener)
    }
  }

  /** Connects a presence stream. */
  listenPresence(listener: Listeners.Sink<PresenceItems.Item>): () => void {
    this.presenceListeners = Listeners.adding(this.presenceListeners, listener)
    return () => {
      this.presenceListeners = Listeners.without(this.presenceListeners, listener)
    }
  }

  // ---------------------------------------------------------------------------
  // inbound: synchronous, called by the transport's read loop (`inbound.ts`)
  // ---------------------------------------------------------------------------

  /** Routes a frame of this channel's topic to what it concerns. */
  readonly onMessage = (message: Model.Message): void => Inbound.route(this, message)

  /** A stream's buffer was full: counted, and logged at the first drop and every thousand. */
  readonly onDropped = (count: number): void => Inbound.dropped(this, count)
}
