/**
 * A channel's join, in the Effect 4 edition: subscribing and releasing, the join's write and wait,
 * its token, leaving and removal. The decisions are the core's state machine's; this carries out
 * the parts that need a fiber.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scheduler from "effect/Scheduler"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import type * as State from "../../../../src/core/channel/state.js"
import type * as Protocol from "../../Protocol.js"
import type * as RealtimeChannel from "../../RealtimeChannel.js"
import {
  AccessTokenError,
  ChannelClosed,
  type ProtocolError,
  type PushTimeout,
  type SocketClosed
} from "../../RealtimeError.js"
import type * as Transport from "../../Transport.js"
import type { ChannelImpl } from "../channel.js"
import * as Turns from "../turns.js"
import { Waiter } from "../waiter.js"

type JoinFailure = RealtimeChannel.JoinError

/**
 * One wait for the join's outcome (a subscriber's, or a send's that waits for the join): settled
 * once, by the join, a give-up or a leave.
 */
export type JoinWaiter = Waiter<void, JoinFailure>

/** Dispatches from a fiber: a token fetch it wants runs in that fiber. */
export const dispatchIn = (self: ChannelImpl, event: State.Event<JoinFailure>): Effect.Effect<void> =>
  Effect.suspend(() => {
    self.dispatch(event)
    const ticket = self.takeTokenFetch()
    return ticket === undefined ? Effect.void : fetchTokenFor(self, ticket)
  })

/**
 * The token fetch of a join, in the subscriber's fiber. If that fiber is interrupted before the
 * token is in (the subscriber gave up), the fetch starts over in a fiber of the channel's: the other
 * waiters of the join must not wait for a join nobody writes.
 */
const fetchTokenFor = (self: ChannelImpl, ticket: number): Effect.Effect<void> => {
  let delivered = false
  return Effect.ensuring(
    Effect.andThen(
      fetchToken(self, ticket),
      Effect.sync(() => {
        delivered = true
      })
    ),
    Effect.sync(() => {
      if (!delivered) self.fetchTokenDetached(ticket)
    })
  )
}

/**
 * How many levels of forks a subscription's first join waits for before it is written. In Effect 4
 * a forked fiber starts only when its parent yields, and a join answered from memory (the
 * in-process server, a fake socket) resumes the subscriber on a microtask, ahead of it. A stream
 * forked before `subscribe` (`stream.pipe(Effect.forkScoped)`, the usual way to listen before
 * subscribing) listens once its fiber has run; one that forks fibers of its own (`Stream.merge` of
 * the channel's streams) listens one turn later, a merge of merges one more. The first join waits
 * for these turns once its token is known, so that the streams obtained before `subscribe` see
 * every event from the join on, as the same code does over a real socket and in the Effect 3
 * edition. The turns are counted after the token fetch, not before it: a test that forks
 * `subscribe` and moves the `TestClock` sees the token fetch (and its sleeps) as before.
 *
 * The turns are the scheduler's, counted without the subscriber's fiber (`internal/turns.ts`): a
 * yield per level in each subscriber was most of the CPU of subscribing to many channels at once.
 */
const FORK_DEPTH = 3

/** Runs the token fetch `ticket` (the last known token if the source fails), then goes on. */
export const fetchToken = (self: ChannelImpl, ticket: number): Effect.Effect<void> =>
  Effect.catch(
    boundedRefresh(self),
    (error) =>
      Effect.logWarning("access token source failed; joining with the last known token").pipe(
        Effect.annotateLogs({ topic: self.topic, error: error.message }),
        Effect.andThen(self.deps.accessToken.current)
      )
  ).pipe(Effect.flatMap((token) =>
    Effect.withFiber((fiber) => {
      const ready = () => self.tokenFetched(ticket, Option.getOrUndefined(token))
      // a first join is written once the streams forked before `subscribe` listen (see `FORK_DEPTH`)
      if (self.tokenAttempt === 0) {
        Turns.afterTurns(fiber.getRef(Scheduler.Scheduler), FORK_DEPTH + 1, ready, (cause) => joinDefect(self, cause))
      } else ready()
      return Effect.void
    })
  ))

/**
 * A defect while writing a first join, outside any fiber: logged, and whoever waits for the join
 * dies with it (as they did when the write ran in the subscriber's fiber), never thrown at the event
 * loop.
 */
const joinDefect = (self: ChannelImpl, cause: unknown): void => {
  self.deps.runFork(
    Effect.logError("the join could not be written").pipe(
      Effect.annotateLogs({ topic: self.topic, cause: String(cause) })
    )
  )
  const waiters = self.joinWaiters
  self.joinWaiters = undefined
  if (waiters !== undefined) { for (const waiter of waiters) waiter.settle(Exit.die(cause)) }
}

/**
 * The source's refresh, given up after the join's timeout: a source that never answers is a failed
 * one (the join goes on with the last known token), never a join that waits forever. A source
 * that fetches nothing answers at once: no timer for it.
 */
const boundedRefresh = (self: ChannelImpl): Effect.Effect<Option.Option<string>, AccessTokenError> => {
  const source = self.deps.accessToken
  if (source.refresh === source.current) return source.refresh
  const timeout = self.joinTimeout
  return Effect.timeoutOrElse(source.refresh, {
    duration: timeout,
    orElse: () => Effect.fail(new AccessTokenError({ cause: `no token within ${Duration.toMillis(timeout)} ms` }))
  })
}

/** Resolves whoever waits for the join. */
export const settle = (self: ChannelImpl, outcome: State.Outcome<JoinFailure>): void => {
  const waiters = self.joinWaiters
  if (waiters === undefined || waiters.size === 0) return
  self.joinWaiters = undefined
  // errors are built only when someone waits (PERFORMANCE.md: a Schema error is costly)
  const exit: Exit.Exit<void, JoinFailure> = outcome._tag === "Joined"
    ? Exit.void
    : outcome._tag === "Failed"
    ? Exit.fail(outcome.failure.error)
    : Exit.fail(new ChannelClosed({ topic: self.topic, reason: outcome.reason }))
  const wake = () => {
    for (const waiter of waiters) waiter.settle(exit)
  }
  // after the statuses of the step: whoever waits for the join sees them first
  if (self.dispatching) (self.settled ??= []).push(wake)
  else self.later(wake)
}

/** Waits for the join's outcome; `subscribe` also asks for the join. */
export const awaitJoin = (self: ChannelImpl, subscribe: boolean): Effect.Effect<void, JoinFailure> =>
  Effect.suspend(() => {
    if (self.machine.state._tag === "Joined") return Effect.void
    const waiter: JoinWaiter = new Waiter()
    ;(self.joinWaiters ??= new Set()).add(waiter)
    const wait = waiter.await(() => {
      self.joinWaiters?.delete(waiter)
    })
    return subscribe ? Effect.andThen(dispatchIn(self, { _tag: "Subscribe" }), wait) : wait
  })

/** Writes the join `joinRef`; its reply feeds the machine. */
export const writeJoin = (self: ChannelImpl, joinRef: string): void => {
  const token = self.token
  const payload = self.joinPayload(token) as Protocol.JoinPayload
  self.lastSystemError = undefined
  self.tokenSent = token
  self.sentJoin = Option.some(
    token !== undefined ? { ...payload, access_token: "<redacted>" } as Protocol.JoinPayload : payload
  )
  const timeout = self.joinTimeout
  self.forgetJoin = self.deps.transport.unsafeRequest(
    { joinRef, ref: joinRef, topic: self.topic, event: "phx_join", payload },
    timeout,
    (exit) => {
      self.forgetJoin = undefined
      onJoinReply(self, joinRef, exit, Duration.toMillis(timeout))
    }
  )
}

const onJoinReply = (
  self: ChannelImpl,
  joinRef: string,
  exit: Exit.Exit<Transport.Reply, SocketClosed | PushTimeout | ProtocolError>,
  timeoutMillis: number
): void => {
  if (Exit.isSuccess(exit)) return self.joinReplied(joinRef, exit.value.status, exit.value.response)
  const error = Cause.findErrorOption(exit.cause)
  if (Option.isNone(error)) return
  switch (error.value._tag) {
    // the socket ended first: the transport's state change follows, and says why
    case "SocketClosed":
      return
    case "PushTimeout":
      return self.joinTimedOut(joinRef, timeoutMillis)
    case "ProtocolError":
      return self.joinBroken(joinRef, error.value)
  }
}

/**
 * Joins (once for every subscriber) until the caller's scope closes. Traced when the app installed a
 * tracer: Effect's default (native) tracer exports nothing, yet its span is about a third of a
 * subscribe's own CPU (the fiber's context changes on entry and on exit): PERFORMANCE.md, Effect 4.
 * No stack trace for the span: the frame it would capture is the library's, not the caller's.
 */
export const subscribe = (self: ChannelImpl): Effect.Effect<void, RealtimeChannel.JoinError, Scope.Scope> =>
  Effect.flatMap(Effect.tracer, (tracer) =>
    tracer === Tracer.nativeTracer
      ? subscribeUntraced(self)
      : Effect.withSpan(subscribeUntraced(self), "RealtimeChannel.subscribe", {
        ...self.spanOptions,
        captureStackTrace: false
      }))

// The yield first: a stream forked just before `subscribe` starts listening (see `FORK_DEPTH`).
const subscribeUntraced = (self: ChannelImpl): Effect.Effect<void, RealtimeChannel.JoinError, Scope.Scope> =>
  Effect.andThen(Effect.yieldNow, subscribeJoin(self))

// The bookkeeping is uninterruptible; the wait is not (a caller may give up on it).
const subscribeJoin = (self: ChannelImpl): Effect.Effect<void, RealtimeChannel.JoinError, Scope.Scope> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.suspend(() => {
      if (self.removed) {
        return Effect.fail(new ChannelClosed({ topic: self.topic, reason: "the channel was removed" }))
      }
      return Effect.flatMap(self.deps.register(self), () => {
        self.addSubscriber()
        self.waiting++
        return Effect.matchCauseEffect(restore(awaitJoin(self, true)), {
          onFailure: (cause) => {
            self.waiting--
            self.dropSubscriber()
            if (self.subscribers > 0) {
              // the last waiting one gave up: the others' channel is not its to give up on
              return self.waiting > 0
                ? Effect.failCause(cause)
                : Effect.andThen(dispatchIn(self, { _tag: "NoneWaits" }), Effect.failCause(cause))
            }
            // no one is left: leave (a join that may still land is left on the server)
            return Effect.andThen(leave(self, "the join failed"), Effect.failCause(cause))
          },
          // released when the caller's scope closes
          onSuccess: () => {
            self.waiting--
            return Effect.flatMap(Effect.scope, (scope) => Scope.addFinalizer(scope, release(self)))
          }
        })
      })
    })
  )

/** A subscription ended: the last one leaves. */
const release = (self: ChannelImpl): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (self.removed) return Effect.void
    self.dropSubscriber()
    return self.subscribers > 0 ? Effect.void : leave(self, "left")
  })

/** Leaves the topic (if joined) and ends the channel's join: written now, never awaited. */
export const leave = (self: ChannelImpl, reason: string): Effect.Effect<void> =>
  Effect.suspend(() => {
    const retrack = self.retrackFiber
    self.retrackFiber = undefined
    self.leaveNow(reason)
    const unregister = self.deps.unregister(self)
    return retrack === undefined ? unregister : Effect.andThen(Fiber.interrupt(retrack), unregister)
  }).pipe(Effect.uninterruptible)

/** Removed from the client: leave and end every stream. */
export const remove = (self: ChannelImpl, reason: string): Effect.Effect<void> =>
  Effect.suspend(() => {
    self.markRemoved()
    return leave(self, reason).pipe(Effect.andThen(Effect.sync(() => self.endStreams())))
  })
