/**
 * The read path: every frame of the socket is decoded and routed synchronously in the socket's
 * `message` callback, with no Effect and no fiber per frame: a reply to the heartbeat wakes the
 * heartbeat, a reply to a request completes it, anything else goes to its topic's route (one a
 * topic). Bad frames are counted and their log throttled.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import type * as Socket from "effect/socket/Socket"
import * as Frames from "../../../../src/core/connection/frames.js"
import * as Shared from "../../../../src/core/connection/state.js"
import type * as Protocol from "../../Protocol.js"
import { InvalidArgument, ProtocolError } from "../../RealtimeError.js"
import * as Metrics from "./metrics.js"
import { constVoid, type State } from "./state.js"

const { framesBad, framesIn, framesUnrouted } = Metrics.metrics

/** @internal */
export const make = (state: State) => {
  const { clock, maxFrameBytes, metricContext, scope, serializer } = state.settings
  const { pending, routes } = state

  // Undecodable frames: every one is counted (`realtime_frames_bad`); the first is logged, and
  // those that follow within a minute (by the Clock) are logged as one summary at the minute's
  // end, so a flood of bad frames logs a line a minute, not a line a frame.
  const badLog = new Frames.BadFrameLog<ProtocolError>()
  const badSummary = Effect.suspend(() => {
    const { last, skipped, total } = badLog.takeSummary(clock.currentTimeMillisUnsafe())
    return Effect.logWarning(`skipped ${skipped} more frames that could not be decoded`).pipe(
      Effect.annotateLogs({ skipped, total, reason: last?.reason ?? "none", detail: last?.detail ?? "" })
    )
  })
  const badFrame = (error: ProtocolError): Effect.Effect<void> | undefined => {
    framesBad.updateUnsafe(1, metricContext)
    const next = badLog.record(error, clock.currentTimeMillisUnsafe())
    if (next === undefined) return undefined
    if (next === "log") {
      return Effect.logWarning("skipped a frame that could not be decoded").pipe(
        Effect.annotateLogs({ reason: error.reason, detail: error.detail, total: badLog.total })
      )
    }
    return Effect.asVoid(
      Effect.forkIn(Effect.andThen(Effect.sleep(Duration.millis(next)), badSummary), scope, {
        startImmediately: true
      })
    )
  }

  // Frames are counted per batch (the frames of one macrotask), not one metric update per frame.
  let framesInPending = 0
  const flushFramesIn = () => {
    framesIn.updateUnsafe(framesInPending, metricContext)
    framesInPending = 0
  }

  // The read path: synchronous, no allocation beyond the decoded message.
  const onFrame = (frame: Protocol.Frame): Effect.Effect<void> | undefined => {
    if (framesInPending++ === 0) queueMicrotask(flushFramesIn)
    // a text frame's UTF-8 size is at least its length: no need to encode it to know it is too large
    const size = typeof frame === "string" ? frame.length : frame.byteLength
    if (size > maxFrameBytes) {
      return badFrame(
        new ProtocolError({ reason: "FrameTooLarge", detail: Frames.tooLargeDetail(frame, size, maxFrameBytes) })
      )
    }
    const decoded = serializer.decode(frame)
    if (Result.isFailure(decoded)) return badFrame(decoded.failure)
    const message = decoded.success
    if (message.event === "phx_reply" && message.ref !== null) {
      const reply = Frames.replyOf(message.payload)
      if (message.ref === state.heartbeatRef) {
        state.heartbeatRef = undefined
        state.heartbeatAnswer = reply
        if (state.heartbeatWake !== undefined) Deferred.doneUnsafe(state.heartbeatWake, Exit.void)
        return undefined
      }
      // a reply is for a request of the same topic and join (a v1 frame carries no join ref)
      const entry = pending.take(message.ref, message.topic, message.joinRef)
      if (entry !== undefined) {
        entry.complete(Exit.succeed(reply))
        return undefined
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
    } else framesUnrouted.updateUnsafe(1, metricContext)
    return undefined
  }

  // What reaches `onFrame`: text as a string, binary as a `Uint8Array` (an `ArrayBuffer` from a
  // WHATWG socket is wrapped, a `Buffer` from `ws` is one already). A `Blob` only comes from a
  // socket whose `binaryType` could not be set to "arraybuffer": it is read asynchronously, which
  // may reorder it against text frames, but it is not lost.
  const onMessage = (event: Socket.WebSocketEvent): void => {
    const data = event.data
    let effect: Effect.Effect<void> | undefined
    if (typeof data === "string" || data instanceof Uint8Array) effect = onFrame(data)
    else if (data instanceof ArrayBuffer) effect = onFrame(new Uint8Array(data))
    else if (ArrayBuffer.isView(data)) effect = onFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    else if (typeof Blob !== "undefined" && data instanceof Blob) {
      data.arrayBuffer().then((bytes) => {
        const later = onFrame(new Uint8Array(bytes))
        if (later !== undefined) state.runInLoop(later)
      }, constVoid)
      return
    } else {
      effect = badFrame(
        new ProtocolError({ reason: "UnsupportedPayload", detail: `a frame of type ${typeof data} from the socket` })
      )
    }
    if (effect !== undefined) state.runInLoop(effect)
  }

  const unsafeRoute = (
    topic: string,
    handler: (message: Protocol.Message) => void
  ): Result.Result<() => void, InvalidArgument> => {
    const added = Shared.addRoute(routes, topic, handler)
    return added.ok ? Result.succeed(added.value) : Result.fail(new InvalidArgument({ detail: added.error }))
  }

  return { badFrame, onFrame, onMessage, unsafeRoute }
}

/** The read path of one transport. @internal */
export type Read = ReturnType<typeof make>
