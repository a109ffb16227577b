/**
 * A channel's join, in the Effect 3 edition: subscribing and releasing, the join's write and wait,
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
import * as Scope from "effect/Scope"
import type * as State from "../../core/channel/state.js"
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

/** Runs the token fetch `ticket` (the last known token if the source fails), then goes on. */
export const fetchToken = (self: ChannelImpl, ticket: number): Effect.Effect<void> =>
  Effect.catchAll(
    boundedRefresh(self),
    (error) =>
      Effect.logWarning("access token source failed; joining with the last known token").pipe(
        Effect.annotateLogs({ topic: self.topic, error: error.message }),
        Effect.zipRight(self.deps.accessToken.current)
      )
  ).pipe(Effect.flatMap((token) => Effect.sync(() => self.tokenFetched(ticket, Option.getOrUndefined(token)))))

/**
 * The source's refresh, given up after the join's timeout: a source that never answers is a failed
 * one (the join goes on with the last known token), never a join that waits forever, even when the
 * subscriber's region is uninterruptible (the timeout interrupts the wait). A source that fetches
 * nothing answers at once: no timer for it.
 */
const boundedRefresh = (self: ChannelImpl): Effect.Effect<Option.Option<string>, AccessTokenError> => {
  const source = self.deps.accessToken
  if (source.refresh === source.current) return source.refresh
  const timeout = self.joinTimeout
  return Effect.timeoutFail(Effect.interruptible(source.refresh), {
    duration: timeout,
    onTimeout: () => new AccessTokenError({ cause: `no token within ${Duration.toMillis(timeout)} ms` })
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
  for (const waiter of waiters) waiter.settle(exit)
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
    return subscribe ? Effect.zipRight(dispatchIn(self, { _tag: "Subscribe" }), wait) : wait
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
  const error = Cause.failureOption(exit.cause)
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

// Effect's default tracer (its native one, which exports nothing): the tracer of the default services
const defaultTracer = Effect.runSync(Effect.tracer)

/**
 * Joins (once for every subscriber) until the caller's scope closes. Traced when the app installed a
 * tracer: with Effect's default one the span exports nothing, yet it and its stack capture cost a
 * tenth of a subscribe's CPU (PERFORMANCE.md). No stack trace for the span: the frame it would
 * capture is the library's, not the caller's.
 */
export const subscribe = (self: ChannelImpl): Effect.Effect<void, RealtimeChannel.JoinError, Scope.Scope> =>
  Effect.flatMap(Effect.tracer, (tracer) =>
    tracer === defaultTracer
      ? subscribeUntraced(self)
      : Effect.withSpan(subscribeUntraced(self), "RealtimeChannel.subscribe", {
        ...self.spanOptions,
        captureStackTrace: false
      }))

// The bookkeeping is uninterruptible; the wait is not (a caller may give up on it).
const subscribeUntraced = (self: ChannelImpl): Effect.Effect<void, RealtimeChannel.JoinError, Scope.Scope> =>
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
                : Effect.zipRight(dispatchIn(self, { _tag: "NoneWaits" }), Effect.failCause(cause))
            }
            // no one is left: leave (a join that may still land is left on the server)
            return Effect.zipRight(leave(self, "the join failed"), Effect.failCause(cause))
          },
          // the scope's own finalizer list: `Effect.addFinalizer` would also diff the fiber's refs
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
    return retrack === undefined ? unregister : Effect.zipRight(Fiber.interrupt(retrack), unregister)
  }).pipe(Effect.uninterruptible)

/** Removed from the client: leave and end every stream. */
export const remove = (self: ChannelImpl, reason: string): Effect.Effect<void> =>
  Effect.suspend(() => {
    self.markRemoved()
    return leave(self, reason).pipe(Effect.zipRight(Effect.sync(() => self.endStreams())))
  })
