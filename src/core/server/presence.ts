/**
 * Presence on the test server (`Phoenix.Presence`): the tables of the fan-out groups, a client's
 * `presence` push (rate limits, write permission, size), track and untrack with `presence_diff` to
 * the group, and the state a joining channel gets in `presence_state`.
 */
import * as Constants from "../protocol/constants.js"
import type * as Model from "../protocol/model.js"
import type { Engine } from "./engine.js"
import { WindowCounter } from "./limits.js"
import { deepEqual, fail, isRecord, ok, payloadSize } from "./payload.js"
import type { PresenceEntry, ServerChannel } from "./state.js"

/** `Phoenix.Presence` state: metas per key, each with its `phx_ref`. */
export type State = Record<string, { readonly metas: ReadonlyArray<Record<string, unknown>> }>

/** The presence tables: per fan-out group, the entries of each presence key. */
export class Tables {
  readonly groups = new Map<string, Map<string, Array<PresenceEntry>>>()
  /** Presence calls per second, server-wide. */
  readonly counter = new WindowCounter(1000)
  private nextRef = 0

  /** A fresh `phx_ref`. */
  newRef(): string {
    return Buffer.from(`phx:${++this.nextRef}`).toString("base64url")
  }

  /** `Phoenix.Presence` `group/1` of a fan-out group. */
  state(key: string): State {
    const state: Record<string, { metas: Array<Record<string, unknown>> }> = {}
    const table = this.groups.get(key)
    if (table === undefined) return state
    for (const [presenceKey, entries] of table) {
      if (entries.length > 0) state[presenceKey] = { metas: entries.map((entry) => entry.meta) }
    }
    return state
  }
}

/** A client's `presence` push: `track` or `untrack`, after the rate limits and the write permission. */
export const receive = (engine: Engine, channel: ServerChannel, message: Model.Message) => {
  const limits = engine.config.limits
  const now = engine.env.now()
  if (channel.presenceCalls.hit(now) > limits.clientPresenceMaxCalls) {
    return engine.shutdown(channel, "Client presence rate limit exceeded")
  }
  if (engine.presence.counter.hit(now) > limits.maxPresenceEventsPerSecond) {
    return engine.shutdown(channel, "Too many presence messages per second")
  }
  const payload = isRecord(message.payload) ? message.payload : {}
  if (payload.event === undefined || payload.event === null) return engine.reply(channel.connection, message, ok())
  const event = typeof payload.event === "string" ? payload.event.toLowerCase() : undefined
  if (event !== "track" && event !== "untrack") return engine.reply(channel.connection, message, fail())
  if (channel.isPrivate && !engine.permissions(channel.claims, channel.subtopic).presenceWrite) {
    return engine.reply(channel.connection, message, fail())
  }
  if (event === "untrack") {
    engine.reply(channel.connection, message, ok())
    return untrack(engine, channel)
  }
  const meta = payload.payload
  if (!isRecord(meta)) {
    return engine.reply(channel.connection, message, fail({ reason: "Presence track payload must be a map" }))
  }
  if (payloadSize(meta) > limits.maxPayloadBytes) return engine.shutdown(channel, "Track message size exceeded")
  channel.presenceEnabled = true
  engine.reply(channel.connection, message, ok())
  track(engine, channel, meta)
}

/** Tracks (or updates) the channel's presence. */
export const track = (engine: Engine, channel: ServerChannel, payload: Record<string, unknown>) => {
  const previous = channel.tracked
  if (previous !== undefined && deepEqual(previous.payload, payload)) return
  const tables = engine.presence
  const meta: Record<string, unknown> = previous === undefined
    ? { ...payload, phx_ref: tables.newRef() }
    : { ...payload, phx_ref: tables.newRef(), phx_ref_prev: previous.meta.phx_ref }
  let table = tables.groups.get(channel.groupKey)
  if (table === undefined) {
    table = new Map()
    tables.groups.set(channel.groupKey, table)
  }
  let entries = table.get(channel.presenceKey)
  if (entries === undefined) {
    entries = []
    table.set(channel.presenceKey, entries)
  }
  if (previous !== undefined) {
    const index = entries.findIndex((entry) => entry.channel === channel)
    if (index >= 0) entries.splice(index, 1)
  }
  entries.push({ channel, meta })
  channel.tracked = { payload, meta }
  diff(
    engine,
    channel,
    { [channel.presenceKey]: { metas: [meta] } },
    previous === undefined ? {} : { [channel.presenceKey]: { metas: [previous.meta] } }
  )
}

/** Untracks the channel's presence, if tracked. */
export const untrack = (engine: Engine, channel: ServerChannel) => {
  const previous = channel.tracked
  if (previous === undefined) return
  channel.tracked = undefined
  const groups = engine.presence.groups
  const table = groups.get(channel.groupKey)
  const entries = table?.get(channel.presenceKey)
  if (entries !== undefined) {
    const index = entries.findIndex((entry) => entry.channel === channel)
    if (index >= 0) entries.splice(index, 1)
    if (entries.length === 0) table!.delete(channel.presenceKey)
    if (table!.size === 0) groups.delete(channel.groupKey)
  }
  diff(engine, channel, {}, { [channel.presenceKey]: { metas: [previous.meta] } })
}

/** `presence_diff` to the channel's group (those who may read presence), each encoding made once. */
const diff = (engine: Engine, channel: ServerChannel, joins: object, leaves: object) => {
  const group = engine.groups.get(channel.groupKey)
  const payload = { joins, leaves }
  let frames: Partial<Record<Model.Vsn, Model.Frame | null>> = {}
  const message = {
    joinRef: null,
    ref: null,
    topic: channel.topic,
    event: Constants.Events.presenceDiff,
    payload
  }
  if (group !== undefined) {
    for (const receiver of group) {
      if (!receiver.canReadPresence || !receiver.connection.open) continue
      const vsn = receiver.connection.handshake.vsn
      let frame = frames[vsn]
      if (frame === undefined) {
        const encoded = receiver.connection.serializer.encode(message)
        frame = encoded.ok ? encoded.value : null
        frames = { ...frames, [vsn]: frame }
      }
      if (frame === null) continue
      engine.write(receiver.connection, frame, message)
    }
  }
  engine.stats.presenceDiffs++
  engine.env.publish({ _tag: "PresenceChanged", topic: channel.topic, private: channel.isPrivate })
}
