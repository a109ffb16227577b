/**
 * The read path: every frame of the socket is decoded and routed synchronously in the socket's read
 * loop, with no Effect per frame: a reply to the heartbeat completes the heartbeat, a reply to a
 * request completes it, anything else goes to its topic's route (one a topic). Bad frames are
 * counted and their log throttled.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Frames from "../../core/connection/frames.js"
import * as Shared from "../../core/connection/state.js"
import type * as Protocol from "../../Protocol.js"
import { InvalidArgument, ProtocolError } from "../../RealtimeError.js"
import * as Metrics from "./metrics.js"
import type { State } from "./state.js"

const { framesBad, framesIn, framesUnrouted } = Metrics.metrics

/** @internal */
export const make = (state: State) => {
  const { clock, maxFrameBytes, scope, serializer } = state.settings
  const { pending, routes } = state

  // Undecodable frames: every one is counted (`realtime_frames_bad`); the first is logged, and
  // those that follow within a minute (by the Clock) are logged as one summary at the minute's
  // end, so a flood of bad frames logs a line a minute, not a line a frame.
  const badLog = new Frames.BadFrameLog<ProtocolError>()
  const badSummary = Effect.suspend(() => {
    const { last, skipped, total } = badLog.takeSummary(clock.unsafeCurrentTimeMillis())
    return Effect.logWarning(`skipped ${skipped} more frames that could not be decoded`).pipe(
      Effect.annotateLogs({ skipped, total, reason: last?.reason ?? "none", detail: last?.detail ?? "" })
    )
  })
  const badFrame = (error: ProtocolError): Effect.Effect<void> | undefined => {
    framesBad.unsafeUpdate(1, [])
    const next = badLog.record(error, clock.unsafeCurrentTimeMillis())
    if (next === undefined) return undefined
    if (next === "log") {
      return Effect.logWarning("skipped a frame that could not be decoded").pipe(
        Effect.annotateLogs({ reason: error.reason, detail: error.detail, total: badLog.total })
      )
    }
    return Effect.asVoid(Effect.forkIn(Effect.zipRight(Effect.sleep(Duration.millis(next)), badSummary), scope))
  }

  // Frames are counted per batch (the frames of one read), not one metric update per frame.
  let framesInPending = 0
  const flushFramesIn = () => {
    framesIn.unsafeUpdate(framesInPending, [])
    framesInPending = 0
  }

  // The read path: synchronous, no allocation beyond the decoded message.
  const onFrame = (data: string | Uint8Array): Effect.Effect<void> | void => {
    if (framesInPending++ === 0) queueMicrotask(flushFramesIn)
    const frame = typeof data === "string" || data instanceof Uint8Array
      ? data
      : new Uint8Array(data as unknown as ArrayBuffer)
    // a text frame's UTF-8 size is at least its length: no need to encode it to know it is too large
    const size = typeof frame === "string" ? frame.length : frame.byteLength
    if (size > maxFrameBytes) {
      return badFrame(
        new ProtocolError({ reason: "FrameTooLarge", detail: Frames.tooLargeDetail(frame, size, maxFrameBytes) })
      )
    }
    const decoded = serializer.decode(frame)
    if (decoded._tag === "Left") return badFrame(decoded.left)
    const message = decoded.right
    if (message.event === "phx_reply" && message.ref !== null) {
      const reply = Frames.replyOf(message.payload)
      if (message.ref === state.heartbeatRef && state.heartbeatReply !== undefined) {
        state.heartbeatRef = undefined
        Deferred.unsafeDone(state.heartbeatReply, Exit.succeed(reply))
        return
      }
      // a reply is for a request of the same topic and join (a v1 frame carries no join ref)
      const entry = pending.take(message.ref, message.topic, message.joinRef)
      if (entry !== undefined) {
        entry.complete(Exit.succeed(reply))
        return
      }
    }
    const route = routes.get(message.topic)
    if (route !== undefined) {
      // a route's handler is user code (`route` is public): its throw must not reach the socket's
      // event handler (that would crash the process); the frame is dropped, loudly
      try {
        route(message)
      } catch (cause) {
        return Effect.logError("a route handler threw: the frame is dropped").pipe(
          Effect.annotateLogs({ topic: message.topic, event: message.event, cause: String(cause) })
        )
      }
    } else framesUnrouted.unsafeUpdate(1, [])
  }

  const unsafeRoute = (
    topic: string,
    handler: (message: Protocol.Message) => void
  ): Either.Either<() => void, InvalidArgument> => {
    const added = Shared.addRoute(routes, topic, handler)
    return added.ok ? Either.right(added.value) : Either.left(new InvalidArgument({ detail: added.error }))
  }

  return { badFrame, onFrame, unsafeRoute }
}

/** The read path of one transport. @internal */
export type Read = ReturnType<typeof make>
