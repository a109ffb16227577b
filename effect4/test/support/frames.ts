/**
 * Playing the server over the fake socket in tests: decode what the client wrote, wait for an event,
 * answer a push.
 */
import { Effect, Queue, Result } from "effect"
import * as Protocol from "../../src/Protocol.js"
import type * as FakeSocket from "../../src/testing/FakeSocket.js"

/** A client frame (text or binary), as the server reads it. */
export const decode = (frame: string | Uint8Array): Protocol.Message =>
  Result.getOrThrow(Protocol.serverV2.decode(frame))

/** The next frame with `event` the client writes on `connection` (earlier ones are skipped). */
export const nextOf = (connection: FakeSocket.FakeConnection, event: string): Effect.Effect<Protocol.Message> =>
  Effect.flatMap(
    Effect.map(Queue.take(connection.sent), decode),
    (m) => m.event === event ? Effect.succeed(m) : nextOf(connection, event)
  )

/** Answers a push with an ok reply (a join gets no Postgres bindings). */
export const replyOk = (connection: FakeSocket.FakeConnection, to: Protocol.Message) =>
  connection.send(Result.getOrThrow(Protocol.serverV2.encode({
    joinRef: to.joinRef,
    ref: to.ref,
    topic: to.topic,
    event: "phx_reply",
    payload: { status: "ok", response: { postgres_changes: [] } }
  })))
