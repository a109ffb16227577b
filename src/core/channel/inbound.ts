/**
 * What a channel does with each frame of its topic: synchronous, called by the transport's read
 * loop. A frame of an earlier join is dropped (counted); a broadcast, Postgres change, `system`
 * message or presence state or diff goes to the streams that want it (one shared item per frame, no
 * other allocation); the server's end of the join (`phx_close`, `phx_error`) feeds the state machine.
 */
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
    case "phx_close":
    case "phx_error": {
      const joinRef = self.joinRef
      if (joinRef === null) return
      if (message.ref !== null && message.ref !== joinRef) return
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
  if (typeof payload !== "object" || payload === null) return
  const p = payload as {
    readonly event?: unknown
    readonly payload?: unknown
    readonly meta?: Listeners.BroadcastItem["meta"]
  }
  const event = p.event
  if (typeof event !== "string") return
  if (self.seen !== undefined && !admitReplayable(self, p.meta)) return
  const listeners = self.broadcastListeners
  const all = listeners.get("*")
  const some = listeners.size > (all === undefined ? 0 : 1) ? listeners.get(event.toLowerCase()) : undefined
  if (all === undefined && some === undefined) return
  const item: Listeners.BroadcastItem = { event, payload: p.payload, meta: p.meta }
  if (all !== undefined) { for (let i = 0; i < all.length; i++) all[i]!.unsafeOffer(item) }
  if (some !== undefined) { for (let i = 0; i < some.length; i++) some[i]!.unsafeOffer(item) }
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
  if (!Array.isArray(p?.ids) || typeof p.data !== "object" || p.data === null) return
  const type = typeof p.data.type === "string" ? p.data.type.toUpperCase() : ""
  for (const listener of listeners) {
    if (listener.index >= 0) {
      const binding = self.wireBindings[listener.index]!
      if (binding.event !== "*" && binding.event.toUpperCase() !== type) continue
      const mine = ids[listener.index]!
      if (!p.ids.some((id) => mine.includes(id as number))) continue
    }
    listener.listener.unsafeOffer(payload)
  }
}

const system = (self: ChannelShell<any>, payload: unknown): void => {
  const message = Config.decodeSystem(payload)
  if (message === undefined) return
  if (message.extension === "system" && message.status === "error") self.lastSystemError = message.message
  const listeners = self.systemListeners
  if (listeners !== undefined) { for (const listener of listeners) listener.unsafeOffer(message) }
}

const presence = (self: ChannelShell<any>, payload: unknown, isState: boolean): void => {
  const joinRef = self.joinRef
  if (joinRef === null) return
  let result: Sync.SyncerResult
  if (isState) {
    if (!Sync.isRawState(payload)) return
    result = Sync.receiveState(self.syncer, joinRef, payload, self.presenceEvents)
  } else {
    if (!Sync.isRawDiff(payload)) return
    result = Sync.receiveDiff(self.syncer, joinRef, payload, self.presenceEvents)
  }
  self.syncer = result.syncer
  const listeners = self.presenceListeners
  if (!result.synced || listeners === undefined) return
  for (const listener of listeners) {
    if (result.events.length > 0) listener.unsafeOffer(result.events)
    listener.unsafeOffer(result.syncer.state)
  }
}
