/**
 * Requests: a push that waits for the `phx_reply` with its ref. One written on the open connection
 * costs no fiber and no timer of its own: its deadline goes in the connection's sorted list, read
 * by one fiber (`timerLoop`) that sleeps until the earliest; the end of the connection fails it
 * (`failWritten`). One made while disconnected is buffered, with a timeout of its own.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import * as Deadlines from "../../../../src/core/connection/deadlines.js"
import type * as Protocol from "../../Protocol.js"
import { type BufferFull, type ProtocolError, PushTimeout, SocketClosed } from "../../RealtimeError.js"
import type * as Transport from "../../Transport.js"
import { constVoid, ioTurn, Pending, type State } from "./state.js"
import type { Write } from "./write.js"

/** @internal */
export const make = (state: State, write: Write) => {
  const { clock, defaultTimeout, serializer } = state.settings
  const { buffer, pending } = state
  const { enqueue, writable, writeNow } = write

  // Timeouts of requests written on the open connection: one fiber of the connection sleeps (on
  // the Effect clock) until the earliest deadline. (When the connection ends, its requests fail
  // anyway.)
  let timerWake: Deferred.Deferred<void> | undefined
  const deadlines = new Deadlines.Deadlines(() => {
    if (timerWake === undefined) return
    const wake = timerWake
    timerWake = undefined
    Deferred.doneUnsafe(wake, Exit.void)
  })

  const timerLoop: Effect.Effect<never> = Effect.gen(function*() {
    // what is left from the previous connection has completed (failWritten)
    deadlines.dropStale()
    while (true) {
      const now = clock.currentTimeMillisUnsafe()
      const due = deadlines.takeDue(now)
      // A timer can fire before the reply that beat it is read (the event loop was blocked: Node
      // runs timers before I/O): read what has arrived first, then fire what is still waiting.
      if (Deadlines.anyArmed(due)) yield* ioTurn
      Deadlines.fire(due)
      const wake = Deferred.makeUnsafe<void>()
      timerWake = wake
      const until = deadlines.sleep()
      if (until === Infinity) yield* Deferred.await(wake)
      else yield* Effect.raceFirst(Effect.sleep(Duration.millis(until - now)), Deferred.await(wake))
      timerWake = undefined
    }
  })

  // On an open connection: written now, then one wait on the reply, completed by the reply, the
  // connection's timer or the end of the connection. Otherwise buffered until the next open, with
  // a timeout of its own (a request that times out while buffered is never sent).
  const request = (
    message: Protocol.Message,
    requestOptions?: { readonly timeout?: Duration.Input | undefined }
  ): Effect.Effect<Transport.Reply, BufferFull | ProtocolError | SocketClosed | PushTimeout> =>
    Effect.suspend((): Effect.Effect<Transport.Reply, BufferFull | ProtocolError | SocketClosed | PushTimeout> => {
      const ref = message.ref
      if (ref === null) return Effect.die(new Error("Transport.request: the message has no ref"))
      const encoded = serializer.encode(message)
      if (Result.isFailure(encoded)) return Effect.fail(encoded.failure)
      const timeout = requestOptions?.timeout === undefined
        ? defaultTimeout
        : Duration.fromInputUnsafe(requestOptions.timeout)
      const timeoutMillis = Duration.toMillis(timeout)
      const entry = new Pending(message.topic, message.joinRef)
      pending.set(ref, entry)
      const forget = () => {
        Deadlines.disarm(entry.timer)
        pending.forget(ref, entry)
      }
      if (state.open && !state.flushing && writable()) {
        const error = writeNow(encoded.success)
        if (error !== undefined) {
          forget()
          return Effect.fail(error)
        }
        entry.written = true
        entry.timer = deadlines.add(clock.currentTimeMillisUnsafe() + timeoutMillis, () => {
          forget()
          entry.complete(Exit.fail(new PushTimeout({ topic: message.topic, event: message.event, timeoutMillis })))
        })
        return entry.await(forget)
      }
      return enqueue(encoded.success, message, () => {
        entry.written = true
      }).pipe(
        Effect.andThen(entry.await(forget)),
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () => Effect.fail(new PushTimeout({ topic: message.topic, event: message.event, timeoutMillis }))
        }),
        Effect.ensuring(Effect.sync(forget))
      )
    })

  const unsafeRequest = (
    message: Protocol.Message,
    timeout: Duration.Duration,
    onDone: (exit: Exit.Exit<Transport.Reply, SocketClosed | PushTimeout | ProtocolError>) => void
  ): () => void => {
    const ref = message.ref
    if (ref === null) throw new Error("Transport.unsafeRequest: the message has no ref")
    const encoded = serializer.encode(message)
    if (Result.isFailure(encoded)) {
      onDone(Exit.fail(encoded.failure))
      return constVoid
    }
    const error = state.open && !state.flushing
      ? writeNow(encoded.success)
      : new SocketClosed({ reason: "not connected" })
    if (error !== undefined) {
      onDone(Exit.fail(error))
      return constVoid
    }
    const entry = new Pending(message.topic, message.joinRef)
    pending.set(ref, entry)
    entry.written = true
    const timeoutMillis = Duration.toMillis(timeout)
    entry.timer = deadlines.add(clock.currentTimeMillisUnsafe() + timeoutMillis, () => {
      pending.forget(ref, entry)
      entry.complete(Exit.fail(new PushTimeout({ topic: message.topic, event: message.event, timeoutMillis })))
    })
    entry.listen(onDone)
    return () => {
      entry.cancel()
      Deadlines.disarm(entry.timer)
      pending.forget(ref, entry)
    }
  }

  const failWritten = (error: SocketClosed) => pending.failWritten(Exit.fail(error))
  const failAll = (error: SocketClosed) => {
    pending.failAll(Exit.fail(error))
    for (const entry of buffer.splice(0)) Deferred.doneUnsafe(entry.done, Exit.fail(error))
  }

  return { request, unsafeRequest, timerLoop, failWritten, failAll }
}

/** The requests of one transport. @internal */
export type Requests = ReturnType<typeof make>
