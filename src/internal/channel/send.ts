/**
 * What a channel sends, in the Effect 3 edition: broadcasts (over the socket once joined, else over
 * HTTP when it may), and presence `track` / `untrack`, re-tracked after a rejoin.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Config from "../../core/channel/config.js"
import * as Outbound from "../../core/channel/outbound.js"
import type * as RealtimeChannel from "../../RealtimeChannel.js"
import { ChannelClosed, InvalidArgument, PayloadTooLarge, PushRejected } from "../../RealtimeError.js"
import type { ChannelImpl } from "../channel.js"
import * as DescribeIssue from "../describe.js"
import { awaitJoin } from "./lifecycle.js"

/** The join ref to push with: now when joined, else once joined (within `timeout`). */
const joinedRef = (self: ChannelImpl, timeout: Duration.Duration): Effect.Effect<string, ChannelClosed> => {
  if (self.machine.state._tag === "Joined" && self.joinRef !== null) return Effect.succeed(self.joinRef)
  if (self.removed || self.subscribers === 0) {
    return Effect.fail(
      new ChannelClosed({ topic: self.topic, reason: "not subscribed: call subscribe before sending" })
    )
  }
  return awaitJoin(self, false).pipe(
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () =>
        new ChannelClosed({ topic: self.topic, reason: `not joined within ${Duration.toMillis(timeout)} ms` })
    }),
    Effect.catchIf(
      (error): error is Exclude<RealtimeChannel.JoinError, ChannelClosed> => error._tag !== "ChannelClosed",
      (error) => Effect.fail(new ChannelClosed({ topic: self.topic, reason: error.message }))
    ),
    Effect.flatMap(() =>
      self.joinRef !== null
        ? Effect.succeed(self.joinRef)
        : Effect.fail(new ChannelClosed({ topic: self.topic, reason: "the channel closed before it joined" }))
    )
  )
}

/** The channel's `send`: a named event's payload is encoded with its schema first. */
export const send = (
  self: ChannelImpl,
  eventOrDefinition: string | RealtimeChannel.BroadcastEvent<any, any>,
  value: unknown,
  options: RealtimeChannel.SendOptions | undefined
): Effect.Effect<void, RealtimeChannel.SendError> => {
  if (typeof eventOrDefinition === "string") {
    return Effect.suspend(() => sendPayload(self, eventOrDefinition, value, options))
  }
  const event = eventOrDefinition.event
  return Schema.encodeUnknown(eventOrDefinition.schema)(value).pipe(
    Effect.mapError((error) =>
      new InvalidArgument({
        detail: `payload of '${event}' does not match its schema: ${DescribeIssue.describeIssue(error.issue)}`
      })
    ),
    Effect.flatMap((payload) => sendPayload(self, event, payload, options))
  )
}

const sendPayload = (
  self: ChannelImpl,
  event: string,
  payload: unknown,
  options: RealtimeChannel.SendOptions | undefined
): Effect.Effect<void, RealtimeChannel.SendError> => {
  const timeout = options?.timeout === undefined ? self.timeout : Duration.decode(options.timeout)
  const persist = options?.persist
  if (persist !== undefined && self.deps.transport.vsn === "1.0.0") {
    return Effect.fail(new InvalidArgument({ detail: "persist needs protocol vsn 2.0.0" }))
  }
  const joinRef = self.currentStatus._tag === "Subscribed" ? self.joinRef : null
  if (joinRef !== null) return pushBroadcast(self, joinRef, event, payload, persist, timeout)
  if (self.httpFallback && Option.isSome(self.deps.httpBroadcast)) {
    const http = self.deps.httpBroadcast.value
    const route = Outbound.httpRoute(self.name, self.config, payload, persist)
    return route.batch
      ? http.sendBatch([{ topic: route.topic, event, payload, private: route.private }], { timeout })
      : http.send(route.topic, event, payload, { private: route.private, persist, timeout })
  }
  return Effect.flatMap(
    joinedRef(self, timeout),
    (joinRef) => pushBroadcast(self, joinRef, event, payload, persist, timeout)
  )
}

const pushBroadcast = (
  self: ChannelImpl,
  joinRef: string,
  event: string,
  payload: unknown,
  persist: RealtimeChannel.SendOptions["persist"],
  timeout: Duration.Duration
): Effect.Effect<void, RealtimeChannel.SendError> => {
  const message = Outbound.message(
    self.topic,
    joinRef,
    self.deps.transport.makeRef(),
    "broadcast",
    Outbound.broadcastPayload(event, payload, persist)
  )
  if (!(self.config.broadcast?.ack ?? false)) return self.deps.transport.push(message)
  return Effect.flatMap(self.deps.transport.request(message, { timeout }), (reply): Effect.Effect<
    void,
    PayloadTooLarge | PushRejected
  > => {
    if (reply.status === "ok") return Effect.void
    if (reply.response === "payload_size_exceeded") {
      return Effect.fail(new PayloadTooLarge({ topic: self.topic, event }))
    }
    return Effect.fail(new PushRejected({ topic: self.topic, event, response: reply.response }))
  })
}

/**
 * Fails when the server ends the current join before `effect` completes: a push whose reply will
 * never come (the server drops a channel's pending pushes with it) fails at once, with the reason.
 */
const orLost = <A, E>(
  self: ChannelImpl,
  effect: Effect.Effect<A, E>
): Effect.Effect<A, E | ChannelClosed | PayloadTooLarge> => {
  const lost = Effect.async<never, ChannelClosed | PayloadTooLarge>((resume) => {
    const fail = (reason: string) =>
      resume(Effect.fail(
        reason.includes(Config.TRACK_TOO_LARGE)
          ? new PayloadTooLarge({ topic: self.topic, event: "presence" })
          : new ChannelClosed({ topic: self.topic, reason })
      ))
    ;(self.lossWaiters ??= new Set()).add(fail)
    return Effect.sync(() => {
      self.lossWaiters?.delete(fail)
    })
  })
  return Effect.raceFirst(effect, lost)
}

const pushPresence = (self: ChannelImpl, payload: object, timeout: Duration.Duration) =>
  Effect.suspend(() => joinedRef(self, timeout)).pipe(
    Effect.flatMap((joinRef) =>
      orLost(
        self,
        self.deps.transport.request(
          Outbound.message(self.topic, joinRef, self.deps.transport.makeRef(), "presence", payload),
          { timeout }
        )
      )
    ),
    Effect.flatMap((reply) =>
      reply.status === "ok"
        ? Effect.void
        : Effect.fail(new PushRejected({ topic: self.topic, event: "presence", response: reply.response }))
    )
  )

/** The channel's `track`: the meta is kept, and tracked again after every rejoin. */
export const track = (
  self: ChannelImpl,
  meta: object,
  options: { readonly timeout?: Duration.DurationInput } | undefined
): ReturnType<RealtimeChannel.RealtimeChannel["track"]> =>
  Effect.suspend((): ReturnType<RealtimeChannel.RealtimeChannel["track"]> => {
    if (!Outbound.isPresenceMeta(meta)) {
      return Effect.fail(new InvalidArgument({ detail: "track: the presence meta must be an object" }))
    }
    self.wantPresence()
    self.tracked = meta
    const timeout = options?.timeout === undefined ? self.timeout : Duration.decode(options.timeout)
    return pushPresence(self, { type: "presence", event: "track", payload: meta }, timeout)
  }).pipe(Effect.withSpan("RealtimeChannel.track", self.spanOptions))

/** The channel's `untrack`. */
export const untrack = (
  self: ChannelImpl,
  options: { readonly timeout?: Duration.DurationInput } | undefined
): ReturnType<RealtimeChannel.RealtimeChannel["untrack"]> =>
  Effect.suspend(() => {
    self.tracked = undefined
    const timeout = options?.timeout === undefined ? self.timeout : Duration.decode(options.timeout)
    return pushPresence(self, { type: "presence", event: "untrack" }, timeout)
  }).pipe(Effect.withSpan("RealtimeChannel.untrack", self.spanOptions))

/** Tracks `meta` again after a rejoin, in a fiber of the client (replacing one still running). */
export const retrack = (self: ChannelImpl, meta: object): void => {
  const previous = self.retrackFiber
  const track = pushPresence(self, { type: "presence", event: "track", payload: meta }, self.timeout).pipe(
    Effect.catchAll((error) =>
      Effect.logWarning("could not track presence again after the rejoin").pipe(
        Effect.annotateLogs({ topic: self.topic, error: error.message })
      )
    )
  )
  const fiber = self.deps.runFork(previous === undefined ? track : Effect.zipRight(Fiber.interrupt(previous), track))
  self.retrackFiber = fiber
  fiber.addObserver(() => {
    if (self.retrackFiber === fiber) self.retrackFiber = undefined
  })
}
