/**
 * The write path: a frame is written straight to the open socket (a synchronous `send`), or
 * buffered (up to `bufferSize`) until the next open, when the buffer is flushed in order.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type * as Protocol from "../../Protocol.js"
import { BufferFull, type ProtocolError, SocketClosed } from "../../RealtimeError.js"
import * as Metrics from "./metrics.js"
import type { Buffered, State } from "./state.js"

const { framesOut } = Metrics.metrics

/** @internal */
export const make = (state: State) => {
  const { bufferSize, serializer } = state.settings
  const { buffer } = state

  const writable = () => state.ws !== undefined && state.ws.readyState === 1

  const writeNow = (frame: Protocol.Frame): SocketClosed | undefined => {
    if (!writable()) return new SocketClosed({ reason: "not connected" })
    try {
      state.ws!.send(frame)
    } catch (cause) {
      return new SocketClosed({ reason: `write failed: ${cause instanceof Error ? cause.message : String(cause)}` })
    }
    framesOut.unsafeUpdate(1, [])
    return undefined
  }
  const writeFrame = (frame: Protocol.Frame): Effect.Effect<void, SocketClosed> => {
    const error = writeNow(frame)
    return error === undefined ? Effect.void : Effect.fail(error)
  }

  // Written in order, one at a time: if the socket dies mid-flush, what is left stays buffered.
  const flush = Effect.gen(function*() {
    state.flushing = true
    while (buffer.length > 0) {
      const entry = buffer[0]!
      if (!entry.cancelled) {
        const written = yield* Effect.either(writeFrame(entry.frame))
        if (written._tag === "Left") return
        entry.onWritten?.()
        Deferred.unsafeDone(entry.done, Exit.void)
      }
      buffer.shift()
    }
  }).pipe(Effect.ensuring(Effect.sync(() => {
    state.flushing = false
  })))

  const enqueue = (
    frame: Protocol.Frame,
    message: Protocol.Message,
    onWritten: (() => void) | undefined,
    canBuffer = true
  ): Effect.Effect<void, BufferFull | SocketClosed> =>
    Effect.suspend((): Effect.Effect<void, BufferFull | SocketClosed> => {
      if (state.open && !state.flushing && writable()) {
        onWritten?.()
        return writeFrame(frame)
      }
      if (!canBuffer) return Effect.fail(new SocketClosed({ reason: "not connected" }))
      if (buffer.length >= bufferSize) {
        return Effect.fail(new BufferFull({ topic: message.topic, event: message.event, capacity: bufferSize }))
      }
      const entry: Buffered = {
        frame,
        done: Deferred.unsafeMake<void, SocketClosed>(FiberId.none),
        onWritten,
        cancelled: false
      }
      buffer.push(entry)
      return Deferred.await(entry.done).pipe(Effect.onInterrupt(() =>
        Effect.sync(() => {
          entry.cancelled = true
        })
      ))
    })

  const push = (
    message: Protocol.Message,
    pushOptions?: { readonly buffer?: boolean | undefined }
  ): Effect.Effect<void, BufferFull | ProtocolError | SocketClosed> =>
    Effect.suspend((): Effect.Effect<void, BufferFull | ProtocolError | SocketClosed> => {
      const encoded = serializer.encode(message)
      return encoded._tag === "Left"
        ? Effect.fail(encoded.left)
        : enqueue(encoded.right, message, undefined, pushOptions?.buffer ?? true)
    })

  const unsafePush = (message: Protocol.Message): SocketClosed | ProtocolError | undefined => {
    const encoded = serializer.encode(message)
    if (encoded._tag === "Left") return encoded.left
    return state.open && !state.flushing ? writeNow(encoded.right) : new SocketClosed({ reason: "not connected" })
  }

  return { writable, writeNow, flush, enqueue, push, unsafePush }
}

/** The write path of one transport. @internal */
export type Write = ReturnType<typeof make>
