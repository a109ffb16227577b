/**
 * The channel lifecycle as an explicit state machine, in plain TypeScript (no `effect` import, so
 * that every edition can share it). `step` takes the current state and what happened, and returns
 * the next state and what to do; the channel's shell (`shell.ts`, extended by each edition's
 * `internal/channel.ts`) carries the commands out and feeds back what they produce. The machine never
 * performs I/O itself: the clock and the rejoin backoff are injected (`Env`).
 *
 * States (the join ref lives inside the state that has one):
 *
 * - `Idle`: created, never subscribed.
 * - `Joining { attempt, joinRef }`: a join attempt runs: the token is being fetched (`joinRef`
 *   undefined) or the `phx_join` is on the wire (`joinRef` set), waiting for its reply.
 * - `Joined { joinRef, since }`: subscribed.
 * - `Backoff { attempt, delayMillis }`: the last attempt failed or the join was lost; a timer runs,
 *   and attempt `attempt` starts when it fires.
 * - `Offline { attempt }`: waiting for the socket to open; attempt `attempt` starts when it does.
 * - `Closed { reason }`: left, removed, or stopped for good.
 *
 * Allowed edges (anything else is ignored, so late replies and timers are harmless):
 *
 * ```
 * Idle | Closed  --Subscribe-->       Joining (socket open) | Offline
 * Joining        --TokenReady-->      Joining with a joinRef (writes the join) | Offline
 * Joining        --JoinOk-->          Joined (subscribers settle with success)
 * Joining        --JoinFailed-->      Backoff | Closed (permanent, or too many failures)
 * Joined         --Lost-->            Backoff | Closed (too many short-lived joins)
 * Joined         --SocketDown-->      Offline (rejoins when the socket opens, whatever its schedule)
 * Joining|Offline--SocketDown-->      Offline | Closed (while a subscribe waits: permanent refusal,
 *                                     or too many failures; Offline when it is held by subscribers
 *                                     that joined before: the waiting ones fail, the channel waits)
 * Offline        --SocketOpen-->      Joining
 * Backoff        --TimerFired-->      Joining | Offline
 * Joining|Backoff|Offline --DeadlineFired--> Closed (while a subscribe waits; the same state
 *                                     when it is held by subscribers that joined before)
 * any            --NoneWaits-->       the same state, no subscribe waiting (no deadline, outages
 *                                     no longer count: the channel is back to its rejoin cycle)
 * any but Closed --Leave-->           Closed (writes phx_leave when a join may be on the server)
 * ```
 *
 * Failures count toward `maxFailures` while a subscribe waits for its first join, and whenever a join
 * the server ends had held for less than `stableMillis` (a server that closes every join at once
 * must not make the client rejoin forever). A join that held at least `stableMillis` resets the
 * count and the backoff. Socket outages of a subscribed channel are not failures: the socket's own
 * reconnect schedule governs them, and the channel rejoins at once when the socket opens.
 *
 * A subscribe that arrives while a rejoin runs counts every backoff delay already taken as a
 * failure (the rejoin after a stable join's loss waits without counting one): it waits at most
 * `maxFailures` attempts and the first `maxFailures - 1` delays of the schedule, the bound the
 * README states, wherever in the schedule it arrived. The socket's outages count too, but the
 * waits between them follow the socket's reconnect schedule, which may be further along: so from
 * its first failure on, a waiting subscribe also has a deadline, `patienceMillis` after it began
 * (the same bound), and fails with the last failure when it passes. A subscribe that joins at
 * once arms nothing.
 */

/** Why an attempt failed or a join ended, in the terms the shell gave (`error` is its own). */
export interface Failure<E> {
  readonly error: E
  /** A short human reason, shown in the status. */
  readonly reason: string
  /** Nothing will change by retrying (a refused key, a permanent join error). */
  readonly permanent: boolean
  /** The join got no reply in time (shown as `TimedOut`). */
  readonly timeoutMillis?: number | undefined
}

/** The channel's state (`E`: the edition's join error). */
export type State<E> =
  | { readonly _tag: "Idle" }
  | { readonly _tag: "Joining"; readonly attempt: number; readonly joinRef: string | undefined }
  | { readonly _tag: "Joined"; readonly joinRef: string; readonly since: number }
  | { readonly _tag: "Backoff"; readonly attempt: number; readonly delayMillis: number; readonly last: Failure<E> }
  | { readonly _tag: "Offline"; readonly attempt: number; readonly last: Failure<E> | undefined }
  | { readonly _tag: "Closed"; readonly reason: string; readonly last: Failure<E> | undefined }

/** The public status the shell shows for a state (the same names as `RealtimeChannel.ChannelStatus`). */
export type Status =
  | { readonly _tag: "Idle" }
  | { readonly _tag: "Joining"; readonly attempt: number }
  | { readonly _tag: "Subscribed" }
  | { readonly _tag: "Errored"; readonly reason: string }
  | { readonly _tag: "TimedOut"; readonly timeoutMillis: number }
  | { readonly _tag: "Rejoining"; readonly attempt: number; readonly delayMillis: number }
  | { readonly _tag: "Closed"; readonly reason: string }

/** What happened. */
export type Event<E> =
  /** A subscriber wants the channel joined. */
  | { readonly _tag: "Subscribe" }
  /** The token of attempt `attempt` is known: the join can be written. */
  | { readonly _tag: "TokenReady"; readonly attempt: number }
  /** The join `joinRef` was accepted. */
  | { readonly _tag: "JoinOk"; readonly joinRef: string }
  /** The join `joinRef` failed (rejected, timed out, or could not be written). */
  | { readonly _tag: "JoinFailed"; readonly joinRef: string | undefined; readonly failure: Failure<E> }
  /** The server ended the join `joinRef` (`phx_close`, `phx_error`, a shutdown). */
  | { readonly _tag: "Lost"; readonly joinRef: string; readonly failure: Failure<E> }
  /** The socket opened. */
  | { readonly _tag: "SocketOpen" }
  /** The socket closed or could not open (`permanent`: it will not be retried). */
  | { readonly _tag: "SocketDown"; readonly failure: Failure<E> }
  /** The backoff timer fired. */
  | { readonly _tag: "TimerFired" }
  /** Every waiting subscribe gave up, while others hold the channel: no one waits any more. */
  | { readonly _tag: "NoneWaits" }
  /** The deadline of a waiting subscribe passed (`failure`: why, if no attempt has failed yet). */
  | { readonly _tag: "DeadlineFired"; readonly failure: Failure<E> }
  /** No one wants the channel any more (last subscriber gone, removed, client closed). */
  | { readonly _tag: "Leave"; readonly reason: string }

/** What to do. */
export type Command<E> =
  /** Fetch the token, then feed `TokenReady { attempt }`. */
  | { readonly _tag: "FetchToken"; readonly attempt: number }
  /** Write the join with this ref; feed `JoinOk` / `JoinFailed` when it settles. */
  | { readonly _tag: "WriteJoin"; readonly joinRef: string; readonly attempt: number }
  /** Write a `phx_leave` for this join now (never buffered, never awaited). */
  | { readonly _tag: "WriteLeave"; readonly joinRef: string }
  /** Arm the backoff timer (replacing any); feed `TimerFired` when it fires. */
  | { readonly _tag: "ArmTimer"; readonly delayMillis: number }
  /** Cancel the backoff timer. */
  | { readonly _tag: "CancelTimer" }
  /** Arm the waiting subscribe's deadline; feed `DeadlineFired` when it passes. */
  | { readonly _tag: "ArmDeadline"; readonly delayMillis: number }
  /** Cancel the deadline. */
  | { readonly _tag: "CancelDeadline" }
  /** Show a status. */
  | { readonly _tag: "Status"; readonly status: Status }
  /** Resolve whoever waits for the join (subscribers, and sends waiting for a rejoin). */
  | { readonly _tag: "Settle"; readonly outcome: Outcome<E> }
  /** The join was accepted (the shell re-tracks presence and says whether it was a rejoin). */
  | { readonly _tag: "Joined" }

/** How a wait for the join ends: joined, failed with the last failure, or closed by a leave. */
export type Outcome<E> =
  | { readonly _tag: "Joined" }
  | { readonly _tag: "Failed"; readonly reason: string; readonly failure: Failure<E> }
  | { readonly _tag: "Closed"; readonly reason: string }

/** What the machine needs from its world. */
export interface Env {
  readonly now: () => number
  /** The next rejoin delay, or `undefined` when the rejoin schedule ended. */
  readonly nextDelay: () => number | undefined
  /** Starts the rejoin schedule over. */
  readonly resetDelay: () => void
  /** A fresh socket-wide ref for a join. */
  readonly makeRef: () => string
  /** Failed attempts after which the channel stops. */
  readonly maxFailures: number
  /** How long a join must hold before its loss is no longer counted as a failure. */
  readonly stableMillis: number
  /** How long a subscribe waits at most: `maxFailures` attempts and the delays between them. */
  readonly patienceMillis: () => number
  /** Someone holds the channel from a subscribe that joined: a waiting one's end is not its end. */
  readonly held: () => boolean
}

/** The machine's whole state: the lifecycle state plus its counters. */
export interface Machine<E> {
  readonly state: State<E>
  /** A subscribe waits for the first join of this subscription. */
  readonly pending: boolean
  /** When the waiting subscribe began. */
  readonly pendingSince: number
  /** The waiting subscribe's deadline is armed. */
  readonly deadline: boolean
  /** Failures counted since the last stable join. */
  readonly failures: number
  /** Backoff delays taken since the rejoin schedule last started over. */
  readonly delays: number
  readonly socketOpen: boolean
  /** Why the socket is down (the last `SocketDown`, kept until the socket opens). */
  readonly socketDown: Failure<E> | undefined
}

/** The machine before any subscribe. */
export const initial = <E>(socketOpen: boolean): Machine<E> => ({
  state: { _tag: "Idle" },
  pending: false,
  pendingSince: 0,
  deadline: false,
  failures: 0,
  delays: 0,
  socketOpen,
  socketDown: undefined
})

/** The join ref of the current join, if one may be on the server. */
export const joinRefOf = <E>(state: State<E>): string | undefined =>
  state._tag === "Joined" || state._tag === "Joining" ? state.joinRef : undefined

/** A step's result. */
export interface Step<E> {
  readonly machine: Machine<E>
  readonly commands: ReadonlyArray<Command<E>>
}

const status = <E>(s: Status): Command<E> => ({ _tag: "Status", status: s })

/** Advances the machine by one event. Pure: the same input gives the same output. */
export const step = <E>(machine: Machine<E>, event: Event<E>, env: Env): Step<E> => {
  const commands: Array<Command<E>> = []
  let m = machine
  const set = (state: State<E>, patch?: Partial<Omit<Machine<E>, "state">>) => {
    m = { ...m, ...patch, state }
  }

  const start = (attempt: number, last: Failure<E> | undefined) => {
    if (!m.socketOpen) {
      // no socket: a waiting subscribe's wait begins now (the socket may not try again soon, as
      // while the device is offline), and its failure says why the socket is down
      set({ _tag: "Offline", attempt, last: last ?? m.socketDown })
      commands.push(
        status(last === undefined ? { _tag: "Joining", attempt } : { _tag: "Errored", reason: last.reason })
      )
      armDeadline()
      return
    }
    set({ _tag: "Joining", attempt, joinRef: undefined })
    commands.push(status({ _tag: "Joining", attempt }), { _tag: "FetchToken", attempt })
  }

  const close = (reason: string, last: Failure<E> | undefined) => {
    if (m.deadline) commands.push({ _tag: "CancelDeadline" })
    commands.push({ _tag: "CancelTimer" }, {
      _tag: "Settle",
      outcome: last === undefined ? { _tag: "Closed", reason } : { _tag: "Failed", reason, failure: last }
    })
    set({ _tag: "Closed", reason, last }, { pending: false, deadline: false })
    commands.push(status({ _tag: "Closed", reason }))
  }

  /** A waiting subscribe met its first failure: from now on it has a deadline. */
  const armDeadline = () => {
    if (!m.pending || m.deadline) return
    m = { ...m, deadline: true }
    commands.push({ _tag: "ArmDeadline", delayMillis: Math.max(0, m.pendingSince + env.patienceMillis() - env.now()) })
  }

  /** The waiting subscribes fail; the channel goes on for those it had joined before. */
  const stopWaiting = (reason: string, failure: Failure<E>) => {
    if (m.deadline) commands.push({ _tag: "CancelDeadline" })
    m = { ...m, pending: false, deadline: false }
    commands.push({ _tag: "Settle", outcome: { _tag: "Failed", reason, failure } })
  }

  /** An attempt failed, or a join ended early: count it, then back off or stop. */
  const retry = (attempt: number, failure: Failure<E>, counted: boolean) => {
    if (failure.permanent) return close(failure.reason, failure)
    const failures = counted ? m.failures + 1 : m.failures
    m = { ...m, failures }
    if (failures >= env.maxFailures) {
      return close(`gave up after ${failures} failed joins: ${failure.reason}`, failure)
    }
    const delay = env.nextDelay()
    if (delay === undefined) return close(`the rejoin schedule ended: ${failure.reason}`, failure)
    armDeadline()
    set({ _tag: "Backoff", attempt, delayMillis: delay, last: failure }, { delays: m.delays + 1 })
    commands.push(
      status(
        failure.timeoutMillis !== undefined
          ? { _tag: "TimedOut", timeoutMillis: failure.timeoutMillis }
          : { _tag: "Errored", reason: failure.reason }
      ),
      status({ _tag: "Rejoining", attempt, delayMillis: delay }),
      { _tag: "ArmTimer", delayMillis: delay }
    )
  }

  /** A join held: was it long enough to count as a success? */
  const settleHeld = (since: number) => {
    if (env.now() - since >= env.stableMillis) {
      m = { ...m, failures: 0, delays: 0 }
      env.resetDelay()
      return true
    }
    return false
  }

  const s = m.state
  switch (event._tag) {
    case "Subscribe": {
      if (s._tag !== "Idle" && s._tag !== "Closed") {
        // joining a rejoin in progress: the delays it took count, so that the bound holds
        if (s._tag !== "Joined" && !m.pending) {
          m = { ...m, pending: true, pendingSince: env.now(), failures: Math.max(m.failures, m.delays) }
        }
        break
      }
      env.resetDelay()
      m = { ...m, pending: true, pendingSince: env.now(), failures: 0, delays: 0 }
      start(0, undefined)
      break
    }
    case "TokenReady": {
      if (s._tag !== "Joining" || s.joinRef !== undefined || s.attempt !== event.attempt) break
      if (!m.socketOpen) {
        set({ _tag: "Offline", attempt: s.attempt, last: m.socketDown })
        armDeadline()
        break
      }
      const joinRef = env.makeRef()
      set({ _tag: "Joining", attempt: s.attempt, joinRef })
      commands.push({ _tag: "WriteJoin", joinRef, attempt: s.attempt })
      break
    }
    case "JoinOk": {
      if (s._tag !== "Joining" || s.joinRef !== event.joinRef) break
      if (m.deadline) commands.push({ _tag: "CancelDeadline" })
      set({ _tag: "Joined", joinRef: event.joinRef, since: env.now() }, { pending: false, deadline: false })
      commands.push({ _tag: "Settle", outcome: { _tag: "Joined" } }, status({ _tag: "Subscribed" }), { _tag: "Joined" })
      break
    }
    case "JoinFailed": {
      if (s._tag !== "Joining" || s.joinRef !== event.joinRef) break
      // a join that timed out may still land: leave it, as realtime-js does
      if (event.joinRef !== undefined && event.failure.timeoutMillis !== undefined && m.socketOpen) {
        commands.push({ _tag: "WriteLeave", joinRef: event.joinRef })
      }
      retry(s.attempt + 1, event.failure, true)
      break
    }
    case "Lost": {
      if (s._tag !== "Joined" || s.joinRef !== event.joinRef) break
      const stable = settleHeld(s.since)
      retry(1, event.failure, !stable)
      break
    }
    case "SocketOpen": {
      m = { ...m, socketOpen: true, socketDown: undefined }
      if (s._tag === "Offline") start(s.attempt, s.last)
      break
    }
    case "SocketDown": {
      m = { ...m, socketOpen: false, socketDown: event.failure }
      const failure = event.failure
      if (s._tag === "Idle" || s._tag === "Closed") break
      if (s._tag === "Joined") {
        // a subscribed channel waits for the socket, whatever its schedule (and rejoins on open)
        settleHeld(s.since)
        set({ _tag: "Offline", attempt: 1, last: failure })
        commands.push(status({ _tag: "Errored", reason: failure.reason }))
        break
      }
      if (m.pending) {
        // while a subscribe waits, a refused or failed socket is a failed join
        const failures = failure.permanent ? m.failures : m.failures + 1
        m = { ...m, failures }
        const reason = failure.permanent ? failure.reason : `gave up after ${failures} failed joins: ${failure.reason}`
        if (failure.permanent || failures >= env.maxFailures) {
          // the waiting subscribes fail; a channel subscribed before waits for the socket
          if (!env.held()) {
            close(reason, failure)
            break
          }
          stopWaiting(reason, failure)
        } else armDeadline()
      }
      if (s._tag === "Backoff") break // the timer runs on; its attempt waits for the socket
      set({ _tag: "Offline", attempt: s._tag === "Joining" ? s.attempt + 1 : s.attempt, last: failure })
      commands.push(status({ _tag: "Errored", reason: failure.reason }))
      break
    }
    case "TimerFired": {
      if (s._tag !== "Backoff") break
      start(s.attempt, s.last)
      break
    }
    case "NoneWaits": {
      if (!m.pending) break
      if (m.deadline) commands.push({ _tag: "CancelDeadline" })
      m = { ...m, pending: false, deadline: false }
      break
    }
    case "DeadlineFired": {
      if (!m.deadline) break
      m = { ...m, deadline: false }
      if (!m.pending || (s._tag !== "Joining" && s._tag !== "Backoff" && s._tag !== "Offline")) break
      const last = s._tag === "Joining" ? undefined : s.last
      const failure = last ?? event.failure
      const reason = `not joined within ${env.patienceMillis()} ms: ${failure.reason}`
      if (env.held()) {
        stopWaiting(reason, failure)
        break
      }
      // a join on the wire may still land: leave it
      if (s._tag === "Joining" && s.joinRef !== undefined && m.socketOpen) {
        commands.push({ _tag: "WriteLeave", joinRef: s.joinRef })
      }
      close(reason, failure)
      break
    }
    case "Leave": {
      if (s._tag === "Closed") break
      const joinRef = joinRefOf(s)
      if (joinRef !== undefined && m.socketOpen) commands.push({ _tag: "WriteLeave", joinRef })
      close(event.reason, undefined)
      break
    }
  }
  return { machine: m, commands }
}

/** The public status of a state (what `step` last emitted for it, minus transient ones). */
export const statusOf = <E>(state: State<E>): Status => {
  switch (state._tag) {
    case "Idle":
      return { _tag: "Idle" }
    case "Joining":
      return { _tag: "Joining", attempt: state.attempt }
    case "Joined":
      return { _tag: "Subscribed" }
    case "Backoff":
      return { _tag: "Rejoining", attempt: state.attempt, delayMillis: state.delayMillis }
    case "Offline":
      return state.last === undefined ? { _tag: "Joining", attempt: state.attempt } : {
        _tag: "Errored",
        reason: state.last.reason
      }
    case "Closed":
      return { _tag: "Closed", reason: state.reason }
  }
}
