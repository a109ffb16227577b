/**
 * Broadcasts on the test server: a client's broadcast push (limits, write permission, ack), the
 * fan-out to a group (text to everyone; a user broadcast as kind 4 to vsn 2.0.0 and converted JSON
 * to vsn 1.0.0, each encoding made once), database broadcasts stored in `realtime.messages`, and
 * stored rows replayed to a joining channel.
 */
import * as Binary from "../protocol/binary.js"
import * as Constants from "../protocol/constants.js"
import type * as Model from "../protocol/model.js"
import * as Serializer from "../protocol/serializer.js"
import * as Topic from "../topic.js"
import type { Engine } from "./engine.js"
import type * as RS from "./model.js"
import { fail, isRecord, ok, payloadSize } from "./payload.js"
import { groupKey, type ServerChannel } from "./state.js"

/** A broadcast as it enters the fan-out. */
export type Origin =
  /** Delivered as text to everyone: a WS text push (payload verbatim) or the batch HTTP endpoint. */
  | { readonly _tag: "Text"; readonly payload: unknown }
  /** A `UserBroadcast`: kind 4 to vsn 2.0.0, converted JSON (or nothing, when binary) to vsn 1.0.0. */
  | {
    readonly _tag: "User"
    readonly event: string
    readonly payload: unknown
    readonly meta?: Readonly<Record<string, unknown>> | undefined
  }

/** The `meta.id` a broadcast carries (`MessageDispatcher.message_id/1`). */
const messageId = (origin: Origin): string | undefined => {
  const meta = origin._tag === "User" ? origin.meta : isRecord(origin.payload) ? origin.payload.meta : undefined
  return isRecord(meta) && typeof meta.id === "string" ? meta.id : undefined
}

/** A client's `broadcast` push: counted, size-checked, write-checked on private channels, fanned out, acked if asked. */
export const receive = (engine: Engine, channel: ServerChannel, message: Model.Message, binary: boolean) => {
  engine.stats.broadcastsReceived++
  if (!engine.countEvent(channel)) return
  const payload = message.payload
  const ack = channel.config.ack
  if (payloadSize(isRecord(payload) && binary ? payload.payload : payload) > engine.config.limits.maxPayloadBytes) {
    if (ack) engine.reply(channel.connection, message, fail("payload_size_exceeded"))
    return
  }
  if (channel.isPrivate) {
    if (channel.broadcastWrite === undefined) {
      channel.broadcastWrite = engine.permissions(channel.claims, channel.subtopic).broadcastWrite
    }
    if (!channel.broadcastWrite) {
      engine.env.log("Debug", "broadcast write denied: dropped without reply", { topic: channel.topic })
      return
    }
  }
  let origin: Origin
  if (binary) {
    if (!isRecord(payload) || typeof payload.event !== "string") {
      engine.env.log("Warning", "unsupported binary broadcast push: dropped", { topic: channel.topic })
      return
    }
    origin = { _tag: "User", event: payload.event, payload: payload.payload }
  } else {
    origin = { _tag: "Text", payload }
  }
  fanOut(engine, channel.isPrivate, channel.subtopic, origin, channel.config.self ? undefined : channel)
  if (ack) engine.reply(channel.connection, message, ok())
}

/** Delivers a broadcast to the group `(isPrivate, subtopic)`, except `exclude`; returns how many channels got it. */
export const fanOut = (
  engine: Engine,
  isPrivate: boolean,
  subtopic: string,
  origin: Origin,
  exclude?: ServerChannel
): number => {
  const group = engine.groups.get(groupKey(isPrivate, subtopic))
  const topic = Topic.PREFIX + subtopic
  let delivered = 0
  if (group !== undefined && group.size > 0) {
    let frameV1: Model.Frame | undefined | null
    let frameV2: Model.Frame | undefined | null
    let messageV1: Model.Message | undefined
    let messageV2: Model.Message | undefined
    const prepare = (vsn: Model.Vsn): void => {
      if (origin._tag === "Text") {
        const message = {
          joinRef: null,
          ref: null,
          topic,
          event: Constants.Events.broadcast,
          payload: origin.payload
        }
        const serializer = Serializer.server(vsn)
        const frame = serializer.encode(message)
        if (!frame.ok) {
          engine.env.log("Error", "cannot encode a broadcast", { topic, error: frame.error.message })
        }
        if (vsn === "1.0.0") {
          messageV1 = message
          frameV1 = frame.ok ? frame.value : null
        } else {
          messageV2 = message
          frameV2 = frame.ok ? frame.value : null
        }
        return
      }
      const body: Record<string, unknown> = {
        type: Constants.Events.broadcast,
        event: origin.event,
        payload: origin.payload
      }
      if (origin.meta !== undefined) body.meta = origin.meta
      const message = { joinRef: null, ref: null, topic, event: Constants.Events.broadcast, payload: body }
      if (vsn === "2.0.0") {
        const frame = Binary.encodeUserBroadcast({
          topic,
          event: origin.event,
          payload: origin.payload,
          meta: origin.meta
        })
        if (!frame.ok) {
          engine.env.log("Error", "cannot encode a user broadcast", { topic, error: frame.error.message })
        }
        messageV2 = message
        frameV2 = frame.ok ? frame.value : null
      } else {
        messageV1 = message
        if (origin.payload instanceof Uint8Array) {
          frameV1 = null // binary user broadcasts are not delivered to vsn 1.0.0
          return
        }
        const frame = Serializer.serverV1.encode(message)
        frameV1 = frame.ok ? frame.value : null
      }
    }
    const id = messageId(origin)
    for (const receiver of group) {
      if (receiver === exclude || !receiver.canReadBroadcast || !receiver.connection.open) continue
      if (id !== undefined && receiver.replayedIds.has(id)) continue // already replayed to this channel
      const vsn = receiver.connection.handshake.vsn
      if (vsn === "1.0.0") {
        if (frameV1 === undefined) prepare(vsn)
        if (frameV1 === null) continue
        engine.write(receiver.connection, frameV1!, messageV1!)
      } else {
        if (frameV2 === undefined) prepare(vsn)
        if (frameV2 === null) continue
        engine.write(receiver.connection, frameV2!, messageV2!)
      }
      delivered++
    }
  }
  engine.stats.broadcastsDelivered += delivered
  engine.env.publish({ _tag: "Broadcast", topic, private: isPrivate, origin: origin._tag, delivered })
  return delivered
}

/** A database broadcast (`realtime.send` / `send_binary`); `topic`: `"room"` or `"realtime:room"`. */
export interface DbMessage {
  readonly topic: string
  readonly event: string
  readonly payload: unknown
  readonly private: boolean
  readonly id: string | undefined
}

/**
 * `realtime.send` / `send_binary`: a row in `realtime.messages`, then its broadcast (kind 4 with meta
 * `{id}`). An `id` already stored is not stored again: the row's broadcast arriving (again) late.
 */
export const dbSend = (engine: Engine, message: DbMessage): number => {
  const subtopic = Topic.subTopicOf(message.topic)
  const id = message.id ?? engine.randomUUID()
  engine.messageStore.insert({
    id,
    topic: subtopic,
    event: message.event,
    payload: message.payload,
    private: message.private
  })
  return fanOut(engine, message.private, subtopic, {
    _tag: "User",
    event: message.event,
    payload: message.payload,
    meta: { id }
  })
}

/**
 * A replayed row, pushed by the channel: text `broadcast` `{type, event, payload, meta}` for JSON, kind 4
 * with the meta for binary (vsn 2.0.0; vsn 1.0.0 cannot carry it: skipped).
 */
export const pushReplayed = (engine: Engine, channel: ServerChannel, row: RS.StoredMessage) => {
  if (row.payload instanceof Uint8Array && channel.connection.handshake.vsn === "1.0.0") return
  engine.push(channel, Constants.Events.broadcast, {
    type: Constants.Events.broadcast,
    event: row.event,
    payload: row.payload,
    meta: { replayed: true, id: row.id }
  })
}
