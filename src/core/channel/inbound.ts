/**
 * What a channel does with each frame of its topic: synchronous, called by the transport's read
 * loop. A frame of an earlier join is dropped (counted); a broadcast, Postgres change, `system`
 * message or presence state or diff goes to the streams that want it (one shared item per frame, no
 * other allocation); the server's end of the join (`phx_close`, `phx_error`) feeds the state machine.
 * A frame it cannot use (malformed, matching no binding, answering no request) is dropped, never
 * thrown, and logged (throttled, see {@link ignored}).
 */
import * as Describe from "../describe.js"
import * as Sync from "../presence/sync.js"
import type * as Model from "../protocol/model.js"
import * as Config from "./config.js"
import type * as Listeners from "./listeners.js"
import type { ChannelShell } from "./shell.js"

/** Routes a frame of the channel's topic to what it concerns. */
export const route = (self: ChannelShell<any>, message: Model.Message): void => {
  if (message.joinRef !== null && message.joinRef !== self.joinRef) {
    self.count("stale", 1)
    return
  }
  switch (message.event) {
    case "broadcast":
      return broadcast(self, message.payload)
    case "postgres_changes":
      return postgresChanges(self, message.payload)
    case "presence_state":
      return presence(self, message.payload, true)
    case "presence_diff":
      return presence(self, message.payload, false)
    case "system":
      return system(self, message.payload)
    case "phx_reply":
      // a reply the transport matched to no request while joined: late (its request timed out) or
      // unknown; out of a join, the reply to its `phx_leave` (never awaited) on a v1 socket
      if (self.joinRef === null) return
      return ignored(self, message.event, "it answers no pending request", { ref: message.ref })
    case "phx_close":
    case "phx_error": {
      const joinRef = self.joinRef
      if (joinRef === null) return
      if (message.ref !== null && message.ref !== joinRef) {
        self.count("stale", 1)
        return
      }
      if (self.machine.state._tag === "Joining") {
        // the join's process ended before it replied: a failed attempt
        const reason = self.lastSystemError ?? `the server ended the join (${message.event})`
        self.forgetJoin?.()
        self.forgetJoin = undefined
        return self.dispatchSync({
          _tag: "JoinFailed",
          joinRef,
          failure: { error: self.closedError(reason), reason, permanent: false }
        })
      }
      return self.lost(
        joinRef,
        message.event === "phx_close"
          ? self.lastSystemError ?? "closed by the server"
          : self.lastSystemError ?? "channel crashed on the server"
      )
    }
  }
}

/** A stream's buffer was full: counted, and logged at the first drop and every thousand. */
export const dropped = (self: ChannelShell<any>, count: number): void => {
  self.count("dropped", count)
  const before = self.dropsLogged
  self.dropsLogged += count
  if (before === 0 || Math.floor(before / 1000) !== Math.floor(self.dropsLogged / 1000)) {
    self.log("Warning", "a stream's buffer is full: dropping events", {
      topic: self.topic,
      capacity: self.bufferSize,
      dropped: self.dropsLogged
    })
  }
}

// One item per frame, shared by every stream that wants it (they are read-only); the event is
// lower-cased only when some stream listens to a specific event.
const broadcast = (self: ChannelShell<any>, payload: unknown): void => {
  // the server relays a peer's broadcast as the peer sent it
  const event = typeof payload === "object" && payload !== null ? (payload as { event?: unknown }).event : undefined
  if (typeof event !== "string") return ignored(self, "broadcast", "it has no string `event`", payload)
  const p = payload as {
    readonly payload?: unknown
    readonly meta?: Listeners.BroadcastItem["meta"]
  }
  if (self.seen !== undefined && !admitReplayable(self, p.meta)) return
  const listeners = self.broadcastListeners
  const all = listeners.get("*")
  const some = listeners.size > (all === undefined ? 0 : 1) ? listeners.get(event.toLowerCase()) : undefined
  if (all === undefined && some === undefined) return
  const item: Listeners.BroadcastItem = { event, payload: p.payload, meta: p.meta }
  if (all !== undefined) { for (let i = 0; i < all.length; i++) all[i]!.unsafeOffer(item) }
  if (some !== undefined) { for (let i = 0; i < some.length; i++) some[i]!.unsafeOffer(item) }
}

/** At most one log line a minute about the frames a channel ignores (after the first). */
export const IGNORED_LOG_INTERVAL = 60_000

/** What a channel ignored: in all, since its last log line, and when it logged it. */
export interface IgnoredLog {
  total: number
  unlogged: number
  loggedAt: number
}

/**
 * Frames of the channel's topic it cannot use (`why`; `n` of them): dropped, never thrown, and
 * logged with what the server sent (bounded), at most a line a minute (by the channel's clock), each
 * line counting those ignored since the previous one.
 */
export const ignored = (self: ChannelShell<any>, event: string, why: string, sent: unknown, n = 1): void =>
  throttled(self, self.ignoredLog, n, `ignored a ${event} frame: ${why}`, (log) => ({
    topic: self.topic,
    event,
    ignored: log.total,
    sent: Describe.describe(sent, { maxLength: 300 })
  }))

/**
 * Counts `n` more of what `log` throttles and writes `message` when a line is due (at most one a
 * minute), with the count of those not logged since the previous line.
 */
const throttled = (
  self: ChannelShell<any>,
  log: IgnoredLog,
  n: number,
  message: string,
  annotations: (log: IgnoredLog) => Record<string, unknown>
): void => {
  log.total += n
  const now = self.deps.now()
  if (now - log.loggedAt < IGNORED_LOG_INTERVAL) {
    log.unlogged += n
    return
  }
  self.log("Warning", message, { ...annotations(log), unloggedBefore: log.unlogged })
  log.loggedAt = now
  log.unlogged = 0
}

/** Replay bookkeeping (replay enabled only): counts replayed broadcasts, refuses a second copy. */
const admitReplayable = (self: ChannelShell<any>, meta: unknown): boolean => {
  const m = typeof meta === "object" && meta !== null
    ? meta as { readonly replayed?: unknown; readonly id?: unknown }
    : {}
  const catchUp = m.replayed === true ? self.catchUp : undefined
  if (catchUp !== undefined) catchUp.frames++
  const fresh = typeof m.id !== "string" || self.seen!.add(m.id)
  if (!fresh) self.count("duplicates", 1)
  else if (catchUp !== undefined) catchUp.replayed++
  if (catchUp !== undefined) {
    if (catchUp.frames >= catchUp.limit) self.finishCatchUp(undefined)
    else self.armSettle(catchUp)
  }
  return fresh
}

const postgresChanges = (self: ChannelShell<any>, payload: unknown): void => {
  const listeners = self.postgresListeners
  const ids = self.matchedIds
  if (listeners === undefined || listeners.length === 0 || ids === undefined) return
  const p = payload as { readonly ids?: unknown; readonly data?: { readonly type?: unknown } }
  if (!Array.isArray(p?.ids) || typeof p.data !== "object" || p.data === null) {
    return ignored(self, "postgres_changes", "it has no `ids` list or no `data` object", payload)
  }
  const type = typeof p.data.type === "string" ? p.data.type.toUpperCase() : ""
  let delivered = false
  for (const listener of listeners) {
    if (listener.index >= 0) {
      const binding = self.wireBindings[listener.index]!
      if (binding.event !== "*" && binding.event.toUpperCase() !== type) continue
      const mine = ids[listener.index]!
      if (!p.ids.some((id) => mine.includes(id as number))) continue
    }
    delivered = true
    listener.listener.unsafeOffer(payload)
  }
  if (!delivered && !matchesAny(p.ids, ids)) {
    ignored(self, "postgres_changes", "its `ids` match none of the channel's bindings", p.ids)
  }
}

// whether any of a change's ids is one of the bindings' (no closure: it runs per frame)
const matchesAny = (changeIds: ReadonlyArray<unknown>, bindingIds: ReadonlyArray<ReadonlyArray<number>>): boolean => {
  for (let i = 0; i < changeIds.length; i++) {
    for (let j = 0; j < bindingIds.length; j++) if (bindingIds[j]!.includes(changeIds[i] as number)) return true
  }
  return false
}

const system = (self: ChannelShell<any>, payload: unknown): void => {
  const message = Config.decodeSystem(payload)
  if (message === undefined) return ignored(self, "system", "its payload is not an object", payload)
  if (message.status === "error") {
    if (message.extension === "system") self.lastSystemError = message.message
    // the channel stays joined, but its Postgres changes will not come: say why (throttled as
    // `ignored`: a server may repeat it)
    else if (message.extension === "postgres_changes") {
      const log = self.postgresErrorLog ??= { total: 0, unlogged: 0, loggedAt: -Infinity }
      throttled(self, log, 1, "the server could not subscribe to Postgres changes", () => ({
        topic: self.topic,
        reason: message.message
      }))
    }
  }
  const listeners = self.systemListeners
  if (listeners !== undefined) { for (const listener of listeners) listener.unsafeOffer(message) }
}

const presence = (self: ChannelShell<any>, payload: unknown, isState: boolean): void => {
  const joinRef = self.joinRef
  if (joinRef === null) return
  const event = isState ? "presence_state" : "presence_diff"
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    return ignored(self, event, "its payload is not an object", payload)
  }
  // the sync skips malformed entries: the rest is applied, and what was skipped is logged
  if (!(isState ? Sync.isRawState(payload) : Sync.isRawDiff(payload))) {
    ignored(
      self,
      event,
      "malformed entries skipped (each needs `metas`, a list of objects with a string `phx_ref`)",
      payload
    )
  }
  const result = isState
    ? Sync.receiveState(self.syncer, joinRef, payload as Sync.RawState, self.presenceEvents)
    : Sync.receiveDiff(self.syncer, joinRef, payload as Sync.RawDiff, self.presenceEvents)
  self.syncer = result.syncer
  // without presence enabled, a public topic's diffs come with no presence_state ever: dropping
  // them is the plan, not news
  if (result.dropped > 0 && self.presenceEnabled) {
    ignored(
      self,
      "presence_diff",
      `${result.dropped} diff(s) waiting for a presence_state dropped (another join's, or over the bound of ${self.syncer.maxPending})`,
      undefined,
      result.dropped
    )
  }
  const listeners = self.presenceListeners
  if (!result.synced || listeners === undefined) return
  for (const listener of listeners) {
    if (result.events.length > 0) listener.unsafeOffer(result.events)
    listener.unsafeOffer(result.syncer.state)
  }
}
