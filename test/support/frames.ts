/**
 * Playing the server over the fake socket in tests: decode what the client wrote, wait for an event,
 * send a message, answer a push.
 */
import { Effect, Either, Queue } from "effect"
import * as Protocol from "../../src/Protocol.js"
import type * as FakeSocket from "../../src/testing/FakeSocket.js"

/** A client frame (text or binary), as the server reads it. */
export const decode = (frame: string | Uint8Array): Protocol.Message =>
  Either.getOrThrow(Protocol.serverV2.decode(frame))

/** The next frame the client writes on `connection`, decoded. */
export const next = (connection: FakeSocket.FakeConnection): Effect.Effect<Protocol.Message> =>
  Effect.map(Queue.take(connection.sent), decode)

/** The next frame with `event` the client writes on `connection` (earlier ones are skipped). */
export const nextOf = (connection: FakeSocket.FakeConnection, event: string): Effect.Effect<Protocol.Message> =>
  Effect.flatMap(next(connection), (m) => m.event === event ? Effect.succeed(m) : nextOf(connection, event))

/** Sends `message` to the client, as the server encodes it. */
export const serverSend = (connection: FakeSocket.FakeConnection, message: Protocol.Message) =>
  connection.send(Either.getOrThrow(Protocol.serverV2.encode(message)))

/** Answers a push with a reply of `status` carrying `response`. */
export const reply = (
  connection: FakeSocket.FakeConnection,
  to: Protocol.Message,
  status: "ok" | "error",
  response: unknown = {}
) =>
  serverSend(connection, {
    joinRef: to.joinRef,
    ref: to.ref,
    topic: to.topic,
    event: "phx_reply",
    payload: { status, response }
  })

/** Answers a push with an ok reply (a join gets no Postgres bindings). */
export const replyOk = (connection: FakeSocket.FakeConnection, to: Protocol.Message) =>
  reply(connection, to, "ok", { postgres_changes: [] })

/** Ends the channel's `join` from the server's side: `phx_error` (it crashed) or `phx_close` (it closed). */
export const endJoin = (
  connection: FakeSocket.FakeConnection,
  join: Protocol.Message,
  event: "phx_error" | "phx_close"
) => serverSend(connection, { joinRef: join.ref, ref: join.ref, topic: join.topic, event, payload: {} })

/** A `system` error and the `phx_close` after it, as the server shuts a channel down. */
export const systemError = (connection: FakeSocket.FakeConnection, join: Protocol.Message, message: string) =>
  Effect.zipRight(
    serverSend(connection, {
      joinRef: join.ref,
      ref: null,
      topic: join.topic,
      event: "system",
      payload: { extension: "system", status: "error", message, channel: "room" }
    }),
    endJoin(connection, join, "phx_close")
  )
