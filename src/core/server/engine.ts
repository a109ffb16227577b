/**
 * The test server's state machine: connections, channels, fan-out groups and counters, with the
 * plumbing every part shares (sending, the routing of inbound frames, a channel's end). Each
 * concern lives in its own module, over the `Engine`: the handshake (`./handshake.ts`), joins
 * (`./join.ts`), broadcasts and their storage (`./broadcast.ts`, `./messages.ts`), presence
 * (`./presence.ts`), tokens (`./tokens.ts`), Postgres changes (`./changes.ts`).
 *
 * Synchronous by design (a frame is handled to completion before the next one); time, timers and
 * randomness come from the `Env` (an edition passes its clock, e.g. Effect's `Clock`, so that
 * `TestClock` drives everything).
 */
import * as Crypto from "node:crypto"
import * as Constants from "../protocol/constants.js"
import type * as Model from "../protocol/model.js"
import * as Topic from "../topic.js"
import * as Broadcast from "./broadcast.js"
import * as Changes from "./changes.js"
import * as ServerConfig from "./config.js"
import * as Handshake from "./handshake.js"
import * as Join from "./join.js"
import type * as Jwt from "./jwt.js"
import * as Keys from "./keys.js"
import { WindowCounter } from "./limits.js"
import { MessageStore } from "./messages.js"
import type * as RS from "./model.js"
import { fail, ok } from "./payload.js"
import type * as Postgres from "./postgres.js"
import * as Presence from "./presence.js"
import { Connection, groupKey, type Peer, type ServerChannel } from "./state.js"
import * as Tokens from "./tokens.js"

/** What the engine needs from outside: the clock, timers, logging, events and randomness. */
export interface Env {
  /** Current time in milliseconds (the edition's clock, e.g. Effect's `Clock`). */
  readonly now: () => number
  /** Runs `f` after `millis` on the edition's clock; returns a canceller. */
  readonly schedule: (millis: number, f: () => void) => () => void
  readonly log: (level: "Debug" | "Info" | "Warning" | "Error", message: string, annotations?: object) => void
  readonly publish: (event: RS.ServerEvent) => void
  /** A fresh UUID (message ids, presence keys); default `crypto.randomUUID`. */
  readonly randomUUID?: (() => string) | undefined
}

/** The test server's engine: every connection, channel, presence table and stored message. */
export class Engine {
  readonly connections = new Map<string, Connection>()
  readonly closedConnections: Array<Connection> = []
  /** Fan-out groups: the channels of a `groupKey`. */
  readonly groups = new Map<string, Set<ServerChannel>>()
  /** The payload of the last join of each topic (any socket, accepted or not). */
  readonly lastJoinPayloads = new Map<string, unknown>()
  readonly stats: { -readonly [K in keyof RS.Stats]: RS.Stats[K] } = {
    connectionsOpened: 0,
    connectionsRefused: 0,
    framesReceived: 0,
    framesSent: 0,
    malformedFrames: 0,
    joins: 0,
    joinsRejected: 0,
    broadcastsReceived: 0,
    broadcastsDelivered: 0,
    httpRequests: 0,
    presenceDiffs: 0,
    changesDelivered: 0
  }
  /** `realtime.messages`. */
  readonly messageStore: MessageStore
  readonly presence = new Presence.Tables()
  readonly joinRules = new Join.Rules()
  readonly refusals = new Handshake.Refusals()
  readonly joinCounter = new WindowCounter(1000)
  readonly eventCounter = new WindowCounter(1000)
  /** Heartbeats of every socket go unanswered. */
  heartbeatsPaused = false
  stopped = false
  private nextConnection = 0
  /** A fresh UUID, from the `Env`. */
  readonly randomUUID: () => string

  constructor(readonly config: ServerConfig.Config, readonly env: Env) {
    this.randomUUID = env.randomUUID ?? Crypto.randomUUID
    this.messageStore = new MessageStore(() => env.now())
  }

  // ---------------------------------------------------------------------------------
  // handshake
  // ---------------------------------------------------------------------------------

  /** Decides an upgrade request, as Phoenix's transport then `UserSocket.connect/3`. */
  handshake(url: string, headers: Readonly<Record<string, string>>): Handshake.Handshake {
    return Handshake.decide(this, url, headers)
  }

  /** The next `count` handshakes are refused with `status` and `{"error": error}`. */
  refuseConnections(count: number, status: number, error: string) {
    this.refusals.set(count, status, error)
  }

  /** An opaque `sb_…` key the server knows becomes a JWT of its role (what the API gateway does). */
  resolveKey(key: string): string {
    return Keys.resolveKey(this.config, key)
  }

  /** How many sockets are open. */
  openConnections(): number {
    let n = 0
    for (const c of this.connections.values()) if (c.open) n++
    return n
  }

  // ---------------------------------------------------------------------------------
  // connections
  // ---------------------------------------------------------------------------------

  /** A socket whose handshake was accepted: `c1`, `c2`, … in order. */
  open(peer: Peer, handshake: Handshake.Accepted, transport: "memory" | "ws"): Connection {
    const id = `c${++this.nextConnection}`
    const connection = new Connection(id, transport, peer, handshake, this.env.now())
    this.connections.set(id, connection)
    this.stats.connectionsOpened++
    this.scheduleIdle(connection)
    this.env.log("Debug", "connection opened", { connection: id, vsn: handshake.vsn })
    this.env.publish({ _tag: "ConnectionOpened", connection: id })
    return connection
  }

  private scheduleIdle(connection: Connection) {
    const idle = this.config.idleTimeoutMillis
    if (idle === undefined || !connection.open) return
    const due = connection.lastActivity + idle - this.env.now()
    connection.idleCancel = this.env.schedule(Math.max(due, 1), () => {
      connection.idleCancel = undefined
      if (!connection.open) return
      if (this.env.now() - connection.lastActivity >= idle) {
        this.env.log("Debug", "idle timeout", { connection: connection.id })
        this.closeConnection(connection, 1000, "idle timeout")
      } else {
        this.scheduleIdle(connection)
      }
    })
  }

  /** Closes from the server side with a close frame. */
  closeConnection(connection: Connection, code: number, reason: string) {
    if (!connection.open) return
    connection.peer.close(code, reason)
    this.onClose(connection, code, reason)
  }

  /** Drops without a close frame. */
  terminateConnection(connection: Connection) {
    if (!connection.open) return
    connection.peer.terminate()
    this.onClose(connection, 1006, "")
  }

  /** The connection closed (either side). Idempotent. */
  onClose(connection: Connection, code: number, reason: string) {
    if (!connection.open) return
    connection.open = false
    connection.closeCode = code
    connection.closeReason = reason
    connection.idleCancel?.()
    for (const pending of connection.pendingJoins.values()) pending.cancel()
    connection.pendingJoins.clear()
    for (const cancel of connection.timers) cancel()
    connection.timers.clear()
    for (const channel of [...connection.channels.values()]) this.teardown(channel, "socket")
    this.connections.delete(connection.id)
    this.closedConnections.push(connection)
    if (this.closedConnections.length > 100) this.closedConnections.shift()
    this.env.log("Debug", "connection closed", { connection: connection.id, code, reason })
    this.env.publish({ _tag: "ConnectionClosed", connection: connection.id, code, reason })
  }

  /** Server shutdown: every socket closed with 1001. */
  stop() {
    this.stopped = true
    for (const connection of [...this.connections.values()]) this.closeConnection(connection, 1001, "server stopped")
  }

  private record(list: Array<RS.RecordedFrame>, frame: RS.RecordedFrame) {
    list.push(frame)
    if (list.length > this.config.maxRecordedFrames) list.splice(0, list.length >> 1)
  }

  /** Runs `f` after `millis` (now when not positive), unless the connection closes first. */
  timer(connection: Connection, millis: number, f: () => void) {
    if (millis <= 0) return f()
    const cancel = this.env.schedule(millis, () => {
      connection.timers.delete(cancel)
      f()
    })
    connection.timers.add(cancel)
  }

  // ---------------------------------------------------------------------------------
  // sending
  // ---------------------------------------------------------------------------------

  /** Encodes and sends a message to a socket (dropped, logged, when it cannot be encoded). */
  send(connection: Connection, message: Model.Message) {
    if (!connection.open) return
    const frame = connection.serializer.encode(message)
    if (!frame.ok) {
      this.env.log("Error", "cannot encode a server message", { event: message.event, error: frame.error.message })
      return
    }
    this.write(connection, frame.value, message)
  }

  /** Sends a frame already encoded (for `message`, as recorded) to the connection's serializer. */
  write(connection: Connection, frame: Model.Frame, message: Model.Message) {
    if (!connection.open) return
    connection.peer.send(frame)
    this.stats.framesSent++
    this.record(connection.sent, { ...message, binary: typeof frame !== "string", at: this.env.now() })
  }

  /** `phx_reply` to a client message (its refs and topic). */
  reply(connection: Connection, message: Model.Message, payload: unknown) {
    this.send(connection, {
      joinRef: message.joinRef,
      ref: message.ref,
      topic: message.topic,
      event: Constants.Events.reply,
      payload
    })
  }

  /** A server push to a channel: `[join_ref, null, topic, event, payload]`. */
  push(channel: ServerChannel, event: string, payload: unknown) {
    this.send(channel.connection, { joinRef: channel.joinRef, ref: null, topic: channel.topic, event, payload })
  }

  /** `phx_close` or `phx_error` of a channel (`ref`: its join ref). */
  close(channel: ServerChannel, event: "phx_close" | "phx_error", payload: unknown) {
    this.send(channel.connection, {
      joinRef: channel.joinRef,
      ref: channel.joinRef,
      topic: channel.topic,
      event,
      payload
    })
  }

  /** A `system` message `{extension, status, message, channel}` to a channel. */
  system(channel: ServerChannel, extension: string, status: string, message: string) {
    this.push(channel, Constants.Events.system, { extension, status, message, channel: channel.subtopic })
  }

  // ---------------------------------------------------------------------------------
  // inbound frames
  // ---------------------------------------------------------------------------------

  /** A frame from a socket: decoded (a malformed one is dropped), recorded, routed. */
  onFrame(connection: Connection, frame: Model.Frame) {
    if (!connection.open) return
    connection.lastActivity = this.env.now()
    const decoded = connection.serializer.decode(frame)
    if (!decoded.ok) {
      this.stats.malformedFrames++
      this.env.log("Warning", "MalformedWebSocketMessage: dropped", {
        connection: connection.id,
        error: decoded.error.message
      })
      this.env.publish({ _tag: "MalformedFrame", connection: connection.id, error: decoded.error.message })
      return
    }
    const message = decoded.value
    const binary = typeof frame !== "string"
    this.stats.framesReceived++
    this.record(connection.received, { ...message, binary, at: this.env.now() })
    try {
      this.route(connection, message, binary)
    } catch (cause) {
      this.env.log("Error", "unexpected error while handling a frame", {
        connection: connection.id,
        event: message.event,
        cause: String(cause)
      })
    }
    this.env.publish({ _tag: "FrameReceived", connection: connection.id, message })
  }

  /** Handles a decoded frame of the connection. */
  route(connection: Connection, message: Model.Message, binary: boolean) {
    const { event, topic } = message
    if (topic === Constants.PHOENIX_TOPIC && event === Constants.Events.heartbeat) {
      if (connection.heartbeatsPaused || this.heartbeatsPaused) return
      return this.reply(connection, message, ok())
    }
    if (event === Constants.Events.join) return Join.join(this, connection, message)
    // a leave of a join still held back waits for it (Phoenix reads a socket's frames in order:
    // the join completes, then the leave ends it); other frames meet no channel, as before
    const pending = event === Constants.Events.leave ? connection.pendingJoins.get(topic) : undefined
    if (pending !== undefined) {
      pending.after.push({ message, binary })
      return
    }
    const channel = connection.channels.get(topic)
    if (channel === undefined) {
      if (event === Constants.Events.leave) return this.reply(connection, message, ok())
      return this.reply(connection, message, fail({ reason: "unmatched topic" }))
    }
    if (message.joinRef !== null && message.joinRef !== channel.joinRef) {
      this.env.log("Debug", "dropping a message with a stale join_ref", { topic, event, joinRef: message.joinRef })
      return
    }
    switch (event) {
      case Constants.Events.leave: {
        this.reply(connection, message, ok())
        this.close(channel, Constants.Events.close, {})
        return this.teardown(channel, "leave")
      }
      case Constants.Events.accessToken:
        return Tokens.refresh(this, channel, message.payload)
      case Constants.Events.broadcast:
        return Broadcast.receive(this, channel, message, binary)
      case Constants.Events.presence:
        return Presence.receive(this, channel, message)
      default: {
        // unknown events are accepted silently, but count toward the rate limit
        this.countEvent(channel)
      }
    }
  }

  /** Counts a client event toward the events/s limit; shuts the channel down past it. */
  countEvent(channel: ServerChannel): boolean {
    if (this.eventCounter.hit(this.env.now()) > this.config.limits.maxEventsPerSecond) {
      this.shutdown(channel, "Too many messages per second")
      return false
    }
    return true
  }

  /** Counts an HTTP broadcast toward the events/s limit: `false` when over it. */
  countHttpEvent(): { readonly allowed: boolean; readonly count: number } {
    const count = this.eventCounter.hit(this.env.now())
    return { allowed: count <= this.config.limits.maxEventsPerSecond, count }
  }

  /** The policy's permissions (all denied when it throws). */
  permissions(claims: Jwt.Claims, subtopic: string): RS.Permissions {
    try {
      return this.config.policy(claims, subtopic)
    } catch (cause) {
      this.env.log("Error", "the policy threw: denying", { subtopic, cause: String(cause) })
      return ServerConfig.noPermissions
    }
  }

  // ---------------------------------------------------------------------------------
  // joins
  // ---------------------------------------------------------------------------------

  /** The next `times` joins (of `topic`, or any) wait `delayMillis`, then fail with `reject` if given. */
  addJoinRule(topic: string | undefined, times: number, delayMillis: number, reject: string | undefined) {
    this.joinRules.add(topic, times, delayMillis, reject)
  }

  /** Forgets pending join rules. */
  clearJoinRules() {
    this.joinRules.clear()
  }

  // ---------------------------------------------------------------------------------
  // channel end
  // ---------------------------------------------------------------------------------

  /** Removes a channel (no frames sent): presence untracked (diff to others), timers cancelled. */
  teardown(channel: ServerChannel, reason: RS.ChannelCloseReason) {
    if (channel.closed) return
    channel.closed = true
    const connection = channel.connection
    if (connection.channels.get(channel.topic) === channel) connection.channels.delete(channel.topic)
    const group = this.groups.get(channel.groupKey)
    if (group !== undefined) {
      group.delete(channel)
      if (group.size === 0) this.groups.delete(channel.groupKey)
    }
    channel.tokenCancel?.()
    channel.tokenCancel = undefined
    if (channel.tracked !== undefined) Presence.untrack(this, channel)
    this.env.log("Debug", "channel closed", { connection: connection.id, topic: channel.topic, reason })
    this.env.publish({
      _tag: "ChannelClosed",
      connection: connection.id,
      topic: channel.topic,
      joinRef: channel.joinRef,
      reason
    })
  }

  /** The server's channel shutdown: a `system` error, then `phx_close`. */
  shutdown(channel: ServerChannel, message: string) {
    if (channel.closed) return
    this.system(channel, "system", "error", message)
    this.close(channel, Constants.Events.close, {})
    this.teardown(channel, "shutdown")
  }

  /** The channel process crashed: `phx_error`. */
  crash(channel: ServerChannel, payload: unknown) {
    if (channel.closed) return
    this.close(channel, Constants.Events.error, payload)
    this.teardown(channel, "crash")
  }

  /** Forces the token-expiry path now. */
  expireToken(channel: ServerChannel) {
    Tokens.expire(this, channel)
  }

  // ---------------------------------------------------------------------------------
  // broadcasts, presence and changes
  // ---------------------------------------------------------------------------------

  /** Delivers a broadcast to the group `(isPrivate, subtopic)`, except `exclude`. */
  fanOut(isPrivate: boolean, subtopic: string, origin: Broadcast.Origin, exclude?: ServerChannel): number {
    return Broadcast.fanOut(this, isPrivate, subtopic, origin, exclude)
  }

  /** `realtime.send` / `send_binary`: a row in `realtime.messages`, then its broadcast. */
  dbSend(message: Broadcast.DbMessage): number {
    return Broadcast.dbSend(this, message)
  }

  /** Rows of `realtime.messages` (of a topic, `"room"` or `"realtime:room"`), oldest first. */
  messages(topic?: string): ReadonlyArray<RS.StoredMessage> {
    return this.messageStore.list(topic)
  }

  /** The presence table of a topic. */
  presenceStateOf(topic: string, isPrivate: boolean) {
    return this.presence.state(groupKey(isPrivate, Topic.subTopicOf(topic)))
  }

  /** Delivers a row change to every channel with a matching binding; returns how many got it. */
  emitChange(change: Postgres.Change): number {
    return Changes.emit(this, change)
  }

  // ---------------------------------------------------------------------------------
  // queries
  // ---------------------------------------------------------------------------------

  /** Every joined channel. */
  *channels(): Iterable<ServerChannel> {
    for (const connection of this.connections.values()) yield* connection.channels.values()
  }

  /** Channels matching the target (all when empty). */
  select(
    target: { readonly connection?: string | undefined; readonly topic?: string | undefined }
  ): Array<ServerChannel> {
    const topic = target.topic === undefined ? undefined : Topic.topicOf(target.topic)
    const out: Array<ServerChannel> = []
    for (const channel of this.channels()) {
      if (target.connection !== undefined && channel.connection.id !== target.connection) continue
      if (topic !== undefined && channel.topic !== topic) continue
      out.push(channel)
    }
    return out
  }

  /** The open socket of an id, or all when `undefined`. */
  selectConnections(connection: string | undefined): Array<Connection> {
    if (connection === undefined) return [...this.connections.values()]
    const found = this.connections.get(connection)
    return found === undefined ? [] : [found]
  }

  /** An open or recently closed socket by id. */
  findConnection(id: string): Connection | undefined {
    return this.connections.get(id) ?? this.closedConnections.find((c) => c.id === id)
  }
}
