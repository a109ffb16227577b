/**
 * The test server's state machine: connections, channels, fan-out, presence, tokens, limits and
 * fault injection. Synchronous by design (a frame is handled to completion before the next one);
 * time, timers and randomness come from the `Env` (an edition passes its clock, e.g. Effect's
 * `Clock`, so that `TestClock` drives everything).
 */
import * as Crypto from "node:crypto"
import * as Binary from "../protocol/binary.js"
import * as Constants from "../protocol/constants.js"
import type * as Model from "../protocol/model.js"
import * as Serializer from "../protocol/serializer.js"
import * as Topic from "../topic.js"
import * as Jwt from "./jwt.js"
import { SlidingCounter, WindowCounter } from "./limits.js"
import type * as RS from "./model.js"
import * as Postgres from "./postgres.js"

// -------------------------------------------------------------------------------------
// environment and configuration
// -------------------------------------------------------------------------------------

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

/** The server's configuration. */
export interface Config {
  readonly jwtSecret: string
  readonly apiKey: string
  readonly opaqueKeys: Readonly<Record<string, string>>
  readonly vsnDefault: Model.Vsn
  readonly joinErrorDelayMillis: number
  readonly connectErrorDelayMillis: number
  readonly idleTimeoutMillis: number | undefined
  readonly tokenCheckMillis: number
  readonly limits: RS.Limits
  readonly policy: RS.Policy
  readonly privateOnly: boolean
  readonly presenceEnabled: boolean
  readonly crashPayload: Readonly<Record<string, unknown>>
  readonly maxRecordedFrames: number
}

/** What a WebSocket connection looks like to the engine (a `FakeSocket.Peer`, or a `ws` socket). */
export interface Peer {
  readonly send: (frame: Model.Frame) => void
  readonly close: (code: number, reason: string) => void
  readonly terminate: () => void
}

/** The result of a handshake: accepted, with what the connection needs; or an HTTP error. */
export type Handshake =
  | {
    readonly _tag: "Accept"
    readonly url: string
    readonly path: string
    readonly vsn: Model.Vsn
    readonly params: Readonly<Record<string, string>>
    readonly headers: Readonly<Record<string, string>>
    readonly token: string
    readonly claims: Jwt.Claims
  }
  | { readonly _tag: "Refuse"; readonly status: number; readonly body: string }

/** The WebSocket paths the server accepts. */
export const SOCKET_PATHS: ReadonlyArray<string> = ["/socket/websocket", "/realtime/v1/websocket"]

const PHOENIX = Constants.PHOENIX_TOPIC
const ok = (response: unknown = {}) => ({ status: "ok", response })
const fail = (response: unknown = {}) => ({ status: "error", response })

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u) && !(u instanceof Uint8Array)

const textEncoder = new TextEncoder()

/** The size the server compares to its payload limit: UTF-8 bytes of the JSON, or the raw bytes. */
const payloadSize = (value: unknown): number => {
  if (value instanceof Uint8Array) return value.byteLength
  if (isRecord(value)) {
    let bytes = 0
    let json = false
    for (const key of Object.keys(value)) {
      const v = value[key]
      if (v instanceof Uint8Array) bytes += v.byteLength + key.length
      else json = true
    }
    if (!json) return bytes
    try {
      const text = JSON.stringify(value, (_, v) => v instanceof Uint8Array ? "" : v)
      return bytes + textEncoder.encode(text).byteLength
    } catch {
      return bytes
    }
  }
  try {
    return textEncoder.encode(JSON.stringify(value) ?? "").byteLength
  } catch {
    return 0
  }
}

const deepEqual = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false
    if (!deepEqual((a as any)[k], (b as any)[k])) return false
  }
  return true
}

const flexibleBoolean = (value: unknown, fallback: boolean, path: string, problems: Array<string>): boolean => {
  if (value === undefined || value === null) return fallback
  if (typeof value === "boolean") return value
  if (typeof value === "string") {
    const lower = value.toLowerCase()
    if (lower === "true") return true
    if (lower === "false") return false
  }
  problems.push(`${path}: unable to parse, expected boolean`)
  return fallback
}

// -------------------------------------------------------------------------------------
// join config
// -------------------------------------------------------------------------------------

/** The `config` of a join, as the server reads it. */
export interface JoinConfig {
  readonly present: boolean
  readonly ack: boolean
  readonly self: boolean
  readonly replicationReady: boolean
  /** `config.broadcast.replay` as sent (`undefined`: absent). */
  readonly replay: unknown
  readonly presenceEnabled: boolean
  readonly presenceKey: unknown
  readonly postgresChanges: ReadonlyArray<Readonly<Record<string, unknown>>>
  readonly private: boolean
}

/** Parses `payload.config` leniently, as the server (`FlexibleBoolean`, defaults for bad fields). */
export const parseJoinConfig = (payload: Record<string, unknown>, problems: Array<string>): JoinConfig => {
  const raw = payload.config
  if (raw === undefined) {
    return {
      present: false,
      ack: false,
      self: false,
      replicationReady: false,
      replay: undefined,
      presenceEnabled: false,
      presenceKey: "",
      postgresChanges: [],
      private: false
    }
  }
  const config = isRecord(raw) ? raw : (problems.push("config: unable to parse, expected a map"), {})
  const broadcast = config.broadcast === undefined || config.broadcast === null
    ? {}
    : isRecord(config.broadcast)
    ? config.broadcast
    : (problems.push("broadcast: unable to parse, expected a map"), {})
  const presence = config.presence === undefined || config.presence === null
    ? {}
    : isRecord(config.presence)
    ? config.presence
    : (problems.push("presence: unable to parse, expected a map"), {})
  let postgresChanges: Array<Record<string, unknown>> = []
  const pg = config.postgres_changes
  if (Array.isArray(pg)) {
    for (const item of pg) {
      if (item === null || item === undefined) continue
      if (isRecord(item)) postgresChanges.push(item)
      else problems.push("postgres_changes: unable to parse, expected an array of maps")
    }
  } else if (pg !== undefined && pg !== null) {
    problems.push("postgres_changes: unable to parse, expected an array of maps")
    postgresChanges = []
  }
  return {
    present: true,
    ack: flexibleBoolean(broadcast.ack, false, "broadcast.ack", problems),
    self: flexibleBoolean(broadcast.self, false, "broadcast.self", problems),
    replicationReady: flexibleBoolean(broadcast.replication_ready, false, "broadcast.replication_ready", problems),
    // the key's presence matters (a `null` replay on a public channel is still refused)
    replay: Object.prototype.hasOwnProperty.call(broadcast, "replay") ? broadcast.replay : undefined,
    presenceEnabled: flexibleBoolean(presence.enabled, false, "presence.enabled", problems),
    presenceKey: presence.key ?? "",
    postgresChanges,
    private: flexibleBoolean(config.private, false, "private", problems)
  }
}

// -------------------------------------------------------------------------------------
// state
// -------------------------------------------------------------------------------------

/** One socket's state. */
export class Connection {
  open = true
  closeCode: number | undefined = undefined
  closeReason: string | undefined = undefined
  heartbeatsPaused = false
  lastActivity: number
  idleCancel: (() => void) | undefined = undefined
  readonly channels = new Map<string, Channel>()
  /** Joins held back by a join rule, per topic, with the leaves that came after them. */
  readonly pendingJoins = new Map<string, {
    readonly cancel: () => void
    readonly after: Array<{ readonly message: Model.Message; readonly binary: boolean }>
  }>()
  readonly timers = new Set<() => void>()
  readonly received: Array<RS.RecordedFrame> = []
  readonly sent: Array<RS.RecordedFrame> = []
  readonly serializer: Model.ServerSerializer
  constructor(
    readonly id: string,
    readonly transport: "memory" | "ws",
    readonly peer: Peer,
    readonly handshake: Extract<Handshake, { _tag: "Accept" }>,
    readonly openedAt: number
  ) {
    this.serializer = Serializer.server(handshake.vsn)
    this.lastActivity = openedAt
  }
}

interface PresenceEntry {
  readonly channel: Channel
  readonly meta: Record<string, unknown>
}

/** One joined channel's state. */
export class Channel {
  closed = false
  token: string
  claims: Jwt.Claims
  presenceEnabled: boolean
  tracked: { readonly payload: Record<string, unknown>; readonly meta: Record<string, unknown> } | undefined = undefined
  broadcastWrite: boolean | undefined = undefined
  tokenCancel: (() => void) | undefined = undefined
  subscriptions: ReadonlyArray<Postgres.Subscription> = []
  /** Ids of the messages replayed at join: the same messages arriving live are not delivered again. */
  replayedIds: ReadonlySet<string> = noIds
  readonly presenceCalls: SlidingCounter
  constructor(
    readonly connection: Connection,
    readonly topic: string,
    readonly joinRef: string | null,
    readonly isPrivate: boolean,
    readonly config: JoinConfig,
    readonly joinPayload: unknown,
    readonly presenceKey: string,
    readonly bindings: ReadonlyArray<{ readonly id: number; readonly params: Readonly<Record<string, unknown>> }>,
    token: string,
    claims: Jwt.Claims,
    public permissions: RS.Permissions,
    presenceWindowMillis: number
  ) {
    this.token = token
    this.claims = claims
    this.presenceEnabled = config.presenceEnabled
    this.presenceCalls = new SlidingCounter(presenceWindowMillis)
  }
  get subtopic(): string {
    return Topic.subTopicOf(this.topic)
  }
  get groupKey(): string {
    return groupKey(this.isPrivate, this.subtopic)
  }
  get canReadBroadcast(): boolean {
    return !this.isPrivate || this.permissions.broadcastRead
  }
  get canReadPresence(): boolean {
    return !this.isPrivate || this.permissions.presenceRead
  }
}

const noIds: ReadonlySet<string> = new Set()

/** The `meta.id` a broadcast carries (`MessageDispatcher.message_id/1`). */
const messageId = (origin: Origin): string | undefined => {
  const meta = origin._tag === "User" ? origin.meta : isRecord(origin.payload) ? origin.payload.meta : undefined
  return isRecord(meta) && typeof meta.id === "string" ? meta.id : undefined
}

const groupKey = (isPrivate: boolean, subtopic: string) => `${isPrivate ? "private" : "public"}:${subtopic}`

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

/** Partitions older than 72 hours are dropped by the server's janitor: such rows are never replayed. */
export const MESSAGE_RETENTION_MILLIS = 72 * 60 * 60 * 1000

/** The replay query's hard limit; also its default. */
const REPLAY_MAX = 25

/** The range `DateTime.from_unix(since, :millisecond)` accepts (years -9999 to 9999). */
const SINCE_MIN = -377_705_116_800_000
const SINCE_MAX = 253_402_300_799_999

/**
 * The replay part of a join (`RealtimeChannel.can_replay?/3`, `maybe_replay_messages/5`,
 * `Messages.replay/5`): a join error, what to replay, or `None` (nothing asked, or a replay that is not a map).
 */
export const replayParams = (
  config: JoinConfig,
  broadcastRead: boolean,
  subtopic: string
):
  | { readonly _tag: "None" }
  | { readonly _tag: "Error"; readonly reason: string }
  | { readonly _tag: "Replay"; readonly since: number; readonly limit: number } =>
{
  const replay = config.replay
  if (replay === undefined) return { _tag: "None" }
  if (config.private && !broadcastRead) {
    return {
      _tag: "Error",
      reason: `Unauthorized: You do not have permissions to read from this Channel topic: ${subtopic}`
    }
  }
  if (!config.private) {
    return { _tag: "Error", reason: "UnableToReplayMessages: Replay is not allowed for public channels" }
  }
  // a replay that is not a map is ignored (the join proceeds without replay)
  if (!isRecord(replay)) return { _tag: "None" }
  const since = replay.since
  // `replay_params["limit"] || 25`: nil and false fall back
  const limit = replay.limit === undefined || replay.limit === null || replay.limit === false
    ? REPLAY_MAX
    : replay.limit
  if (
    typeof since !== "number" || !Number.isInteger(since) || since < SINCE_MIN || since > SINCE_MAX ||
    typeof limit !== "number" || !Number.isInteger(limit)
  ) {
    return { _tag: "Error", reason: "UnableToReplayMessages: Replay params are not valid" }
  }
  return { _tag: "Replay", since, limit: Math.max(1, Math.min(limit, REPLAY_MAX)) }
}

interface JoinRule {
  readonly topic: string | undefined
  remaining: number
  readonly delayMillis: number
  readonly reject: string | undefined
}

// -------------------------------------------------------------------------------------
// engine
// -------------------------------------------------------------------------------------

/** The test server's engine: every connection, channel, presence table and stored message. */
export class Engine {
  readonly connections = new Map<string, Connection>()
  readonly closedConnections: Array<Connection> = []
  readonly groups = new Map<string, Set<Channel>>()
  readonly presence = new Map<string, Map<string, Array<PresenceEntry>>>()
  readonly lastJoinPayloads = new Map<string, unknown>()
  /** `realtime.messages`, in insertion order. */
  private storedMessages: Array<RS.StoredMessage> = []
  private readonly storedIds = new Set<string>()
  private oldestStored = Infinity
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
  private nextConnection = 0
  private nextPhxRef = 0
  private refuseRemaining = 0
  private refusal: { readonly status: number; readonly error: string } = {
    status: 500,
    error: "Error connecting to Realtime"
  }
  heartbeatsPaused = false
  private joinRules: Array<JoinRule> = []
  private readonly joinCounter = new WindowCounter(1000)
  private readonly eventCounter = new WindowCounter(1000)
  private readonly presenceCounter = new WindowCounter(1000)
  stopped = false

  constructor(readonly config: Config, readonly env: Env) {
    this.randomUUID = env.randomUUID ?? Crypto.randomUUID
  }

  /** A fresh UUID, from the `Env`. */
  private readonly randomUUID: () => string

  // ---------------------------------------------------------------------------------
  // handshake
  // ---------------------------------------------------------------------------------

  /** Decides an upgrade request, as Phoenix's transport then `UserSocket.connect/3`. */
  handshake(url: string, headers: Readonly<Record<string, string>>): Handshake {
    let parsed: URL
    try {
      parsed = new URL(url, "http://localhost")
    } catch {
      return this.refuse(400, JSON.stringify({ error: "Bad Request" }))
    }
    const path = parsed.pathname.replace(/\/+$/, "")
    if (!SOCKET_PATHS.includes(path)) return this.refuse(404, JSON.stringify({ error: "Not Found" }))
    if (this.refuseRemaining > 0) {
      this.refuseRemaining--
      return this.refuse(this.refusal.status, JSON.stringify({ error: this.refusal.error }))
    }
    const params: Record<string, string> = {}
    parsed.searchParams.forEach((value, key) => {
      params[key] = value
    })
    const vsnParam = params.vsn ?? this.config.vsnDefault
    const vsn: Model.Vsn | undefined = /^1\.0\.\d+$/.test(vsnParam)
      ? "1.0.0"
      : /^2\.0\.\d+$/.test(vsnParam)
      ? "2.0.0"
      : undefined
    if (vsn === undefined) return this.refuse(403, "")
    const apiKey = headers["x-api-key"] ?? params.apikey
    if (apiKey === undefined || apiKey === "") return this.refuse(401, JSON.stringify({ error: "API key is missing" }))
    const token = this.resolveKey(apiKey)
    const verified = Jwt.verify(token, this.config.jwtSecret, this.env.now())
    if (verified._tag !== "Ok") return this.refuse(401, JSON.stringify({ error: Jwt.message(verified) }))
    if (this.openConnections() >= this.config.limits.maxConcurrentUsers) {
      return this.refuse(429, JSON.stringify({ error: "Too many connected users" }))
    }
    if (this.joinCounter.current(this.env.now()) > this.config.limits.maxJoinsPerSecond) {
      return this.refuse(429, JSON.stringify({ error: "Too many joins per second" }))
    }
    return {
      _tag: "Accept",
      url,
      path,
      vsn,
      params,
      headers,
      token,
      claims: verified.claims
    }
  }

  private refuse(status: number, body: string): Handshake {
    this.stats.connectionsRefused++
    this.env.publish({ _tag: "ConnectionRefused", status, body })
    this.env.log("Debug", "connection refused", { status, body })
    return { _tag: "Refuse", status, body }
  }

  /** An opaque `sb_…` key the server knows becomes a JWT of its role (what the API gateway does). */
  resolveKey(key: string): string {
    const role = this.config.opaqueKeys[key]
    if (role === undefined) return key
    return Jwt.sign({ role, iss: "supabase", exp: 4_102_444_800 }, this.config.jwtSecret)
  }

  openConnections(): number {
    let n = 0
    for (const c of this.connections.values()) if (c.open) n++
    return n
  }

  refuseConnections(count: number, status: number, error: string) {
    this.refuseRemaining = count
    this.refusal = { status, error }
  }

  // ---------------------------------------------------------------------------------
  // connections
  // ---------------------------------------------------------------------------------

  open(peer: Peer, handshake: Extract<Handshake, { _tag: "Accept" }>, transport: "memory" | "ws"): Connection {
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

  private record(list: Array<RS.RecordedFrame>, frame: RS.RecordedFrame) {
    list.push(frame)
    if (list.length > this.config.maxRecordedFrames) list.splice(0, list.length >> 1)
  }

  private timer(connection: Connection, millis: number, f: () => void) {
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

  send(connection: Connection, message: Model.Message) {
    if (!connection.open) return
    const frame = connection.serializer.encode(message)
    if (!frame.ok) {
      this.env.log("Error", "cannot encode a server message", { event: message.event, error: frame.error.message })
      return
    }
    this.write(connection, frame.value, message)
  }

  private write(connection: Connection, frame: Model.Frame, message: Model.Message) {
    if (!connection.open) return
    connection.peer.send(frame)
    this.stats.framesSent++
    this.record(connection.sent, { ...message, binary: typeof frame !== "string", at: this.env.now() })
  }

  reply(connection: Connection, message: Model.Message, payload: unknown) {
    this.send(connection, {
      joinRef: message.joinRef,
      ref: message.ref,
      topic: message.topic,
      event: Constants.Events.reply,
      payload
    })
  }

  push(channel: Channel, event: string, payload: unknown) {
    this.send(channel.connection, { joinRef: channel.joinRef, ref: null, topic: channel.topic, event, payload })
  }

  private close(channel: Channel, event: "phx_close" | "phx_error", payload: unknown) {
    this.send(channel.connection, {
      joinRef: channel.joinRef,
      ref: channel.joinRef,
      topic: channel.topic,
      event,
      payload
    })
  }

  system(channel: Channel, extension: string, status: string, message: string) {
    this.push(channel, Constants.Events.system, { extension, status, message, channel: channel.subtopic })
  }

  // ---------------------------------------------------------------------------------
  // inbound frames
  // ---------------------------------------------------------------------------------

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

  private route(connection: Connection, message: Model.Message, binary: boolean) {
    const { event, topic } = message
    if (topic === PHOENIX && event === Constants.Events.heartbeat) {
      if (connection.heartbeatsPaused || this.heartbeatsPaused) return
      return this.reply(connection, message, ok())
    }
    if (event === Constants.Events.join) return this.join(connection, message)
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
        return this.accessToken(channel, message.payload)
      case Constants.Events.broadcast:
        return this.broadcast(channel, message, binary)
      case Constants.Events.presence:
        return this.presenceEvent(channel, message)
      default: {
        // unknown events are accepted silently, but count toward the rate limit
        this.countEvent(channel)
      }
    }
  }

  /** Counts a client event toward the events/s limit; shuts the channel down past it. */
  private countEvent(channel: Channel): boolean {
    if (this.eventCounter.hit(this.env.now()) > this.config.limits.maxEventsPerSecond) {
      this.shutdown(channel, "Too many messages per second")
      return false
    }
    return true
  }

  // ---------------------------------------------------------------------------------
  // join
  // ---------------------------------------------------------------------------------

  private join(connection: Connection, message: Model.Message) {
    const { topic } = message
    const payload = isRecord(message.payload) ? message.payload : {}
    this.lastJoinPayloads.set(topic, message.payload)
    if (!Topic.hasPrefix(topic)) return this.reply(connection, message, fail({ reason: "unmatched topic" }))
    const existing = connection.channels.get(topic)
    if (existing !== undefined) {
      this.close(existing, Constants.Events.close, {})
      this.teardown(existing, "duplicate")
    }
    connection.pendingJoins.get(topic)?.cancel()
    connection.pendingJoins.delete(topic)
    const rule = this.takeJoinRule(topic)
    const after: Array<{ readonly message: Model.Message; readonly binary: boolean }> = []
    const proceed = () => {
      connection.pendingJoins.delete(topic)
      if (!connection.open) return
      if (rule?.reject !== undefined) this.joinError(connection, message, rule.reject)
      else this.processJoin(connection, message, payload)
      for (const next of after) if (connection.open) this.route(connection, next.message, next.binary)
    }
    if (rule === undefined || rule.delayMillis <= 0) return proceed()
    const cancel = this.env.schedule(rule.delayMillis, proceed)
    connection.pendingJoins.set(topic, { cancel, after })
  }

  private takeJoinRule(topic: string): JoinRule | undefined {
    const index = this.joinRules.findIndex((rule) => rule.topic === undefined || rule.topic === topic)
    if (index < 0) return undefined
    const rule = this.joinRules[index]!
    if (--rule.remaining <= 0) this.joinRules.splice(index, 1)
    return rule
  }

  addJoinRule(topic: string | undefined, times: number, delayMillis: number, reject: string | undefined) {
    this.joinRules.push({
      topic: topic === undefined ? undefined : Topic.topicOf(topic),
      remaining: times,
      delayMillis,
      reject
    })
  }

  clearJoinRules() {
    this.joinRules = []
  }

  private joinError(connection: Connection, message: Model.Message, reason: string, closeSocket = false) {
    this.stats.joinsRejected++
    this.env.log("Debug", "join rejected", { connection: connection.id, topic: message.topic, reason })
    this.env.publish({ _tag: "JoinRejected", connection: connection.id, topic: message.topic, reason })
    this.timer(connection, this.config.joinErrorDelayMillis, () => {
      this.reply(connection, message, fail({ reason }))
      if (closeSocket) this.closeConnection(connection, 1001, "")
    })
  }

  private processJoin(connection: Connection, message: Model.Message, payload: Record<string, unknown>) {
    const { topic } = message
    const subtopic = Topic.subTopicOf(topic)
    const problems: Array<string> = []
    const config = parseJoinConfig(payload, problems)
    if (problems.length > 0) {
      this.env.log("Warning", "InvalidJoinPayload", { topic, problems })
    }
    const limits = this.config.limits
    const now = this.env.now()
    if (subtopic === "") return this.joinError(connection, message, "TopicNameRequired: You must provide a topic name")
    if (this.config.privateOnly && !config.private) {
      return this.joinError(connection, message, "PrivateOnly: This project only allows private channels")
    }
    if (this.openConnections() > limits.maxConcurrentUsers) {
      return this.joinError(connection, message, "ConnectionRateLimitReached: Too many connected users")
    }
    if (this.joinCounter.hit(now) > limits.maxJoinsPerSecond) {
      return this.joinError(connection, message, "ClientJoinRateLimitReached: Too many joins per second", true)
    }
    if (connection.channels.size >= limits.maxChannelsPerClient) {
      return this.joinError(connection, message, "ChannelRateLimitReached: Too many channels")
    }
    const candidate = payload.access_token ?? payload.user_token ?? connection.handshake.token
    const token = typeof candidate === "string" && candidate.startsWith("sb_")
      ? connection.handshake.token
      : candidate
    const verified = Jwt.verify(token, this.config.jwtSecret, now)
    if (verified._tag !== "Ok") return this.joinError(connection, message, Jwt.joinReason(verified))
    const permissions = config.private ? this.permissions(verified.claims, subtopic) : allowAll
    if (config.private && !permissions.broadcastRead && !permissions.presenceRead) {
      return this.joinError(
        connection,
        message,
        `Unauthorized: You do not have permissions to read from this Channel topic: ${subtopic}`
      )
    }
    const replay = replayParams(config, permissions.broadcastRead, subtopic)
    if (replay._tag === "Error") return this.joinError(connection, message, replay.reason)
    const replayed = replay._tag === "Replay" ? this.replayMessages(subtopic, replay.since, replay.limit) : []

    // accepted
    const key = config.presenceKey === "" || config.presenceKey === undefined || config.presenceKey === null
      ? this.randomUUID()
      : typeof config.presenceKey === "string"
      ? config.presenceKey
      : typeof config.presenceKey === "object"
      ? JSON.stringify(config.presenceKey)
      : String(config.presenceKey)
    const bindings = config.postgresChanges.map((params) => ({ id: Postgres.bindingId(params), params }))
    const channel = new Channel(
      connection,
      topic,
      message.joinRef,
      config.private,
      config,
      message.payload,
      key,
      bindings,
      token as string,
      verified.claims,
      permissions,
      limits.clientPresenceWindowMillis
    )
    if (this.config.presenceEnabled) channel.presenceEnabled = true
    if (replayed.length > 0) channel.replayedIds = new Set(replayed.map((row) => row.id))
    connection.channels.set(topic, channel)
    let group = this.groups.get(channel.groupKey)
    if (group === undefined) {
      group = new Set()
      this.groups.set(channel.groupKey, group)
    }
    group.add(channel)
    this.stats.joins++
    this.reply(
      connection,
      message,
      ok(config.present ? { postgres_changes: bindings.map((b) => ({ ...b.params, id: b.id })) } : {})
    )
    for (const row of replayed) this.pushReplayed(channel, row)
    if (channel.presenceEnabled && channel.canReadPresence) {
      this.push(channel, Constants.Events.presenceState, this.presenceState(channel.groupKey))
    }
    if (bindings.length > 0) this.subscribePostgres(channel)
    if (config.replicationReady) this.system(channel, "system", "ok", "Replication connection established")
    this.scheduleTokenCheck(channel)
    this.env.log("Debug", "joined", { connection: connection.id, topic, joinRef: message.joinRef })
    this.env.publish({ _tag: "ChannelJoined", connection: connection.id, topic, joinRef: message.joinRef })
  }

  private permissions(claims: Jwt.Claims, subtopic: string): RS.Permissions {
    try {
      return this.config.policy(claims, subtopic)
    } catch (cause) {
      this.env.log("Error", "the policy threw: denying", { subtopic, cause: String(cause) })
      return denyAll
    }
  }

  private subscribePostgres(channel: Channel) {
    const subscriptions: Array<Postgres.Subscription> = []
    for (const binding of channel.bindings) {
      const result = Postgres.subscribe(binding.params, binding.id)
      if (!result.ok) {
        channel.subscriptions = []
        return this.system(channel, "postgres_changes", "error", result.error)
      }
      subscriptions.push(result.value)
    }
    channel.subscriptions = subscriptions
    this.system(channel, "postgres_changes", "ok", "Subscribed to PostgreSQL")
  }

  // ---------------------------------------------------------------------------------
  // channel end
  // ---------------------------------------------------------------------------------

  /** Removes a channel (no frames sent): presence untracked (diff to others), timers cancelled. */
  teardown(channel: Channel, reason: RS.ChannelCloseReason) {
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
    if (channel.tracked !== undefined) this.untrack(channel)
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
  shutdown(channel: Channel, message: string) {
    if (channel.closed) return
    this.system(channel, "system", "error", message)
    this.close(channel, Constants.Events.close, {})
    this.teardown(channel, "shutdown")
  }

  /** The channel process crashed: `phx_error`. */
  crash(channel: Channel, payload: unknown) {
    if (channel.closed) return
    this.close(channel, Constants.Events.error, payload)
    this.teardown(channel, "crash")
  }

  // ---------------------------------------------------------------------------------
  // tokens
  // ---------------------------------------------------------------------------------

  private scheduleTokenCheck(channel: Channel) {
    channel.tokenCancel?.()
    channel.tokenCancel = undefined
    const exp = channel.claims.exp
    if (typeof exp !== "number") return
    const delay = Math.min(this.config.tokenCheckMillis, exp * 1000 - this.env.now())
    channel.tokenCancel = this.env.schedule(Math.max(delay, 0), () => {
      channel.tokenCancel = undefined
      if (channel.closed) return
      const verified = Jwt.verify(channel.token, this.config.jwtSecret, this.env.now())
      if (verified._tag !== "Ok") return this.shutdown(channel, Jwt.shutdownMessage(verified))
      this.scheduleTokenCheck(channel)
    })
  }

  /** Forces the token-expiry path now. */
  expireToken(channel: Channel) {
    const exp = channel.claims.exp
    const now = Math.floor(this.env.now() / 1000)
    const seconds = typeof exp === "number" && exp <= now ? Math.floor(now - exp) : 0
    this.shutdown(channel, `Token has expired ${seconds} seconds ago`)
  }

  private accessToken(channel: Channel, payload: unknown) {
    const token = isRecord(payload) ? payload.access_token : undefined
    if (typeof token !== "string" || token.startsWith("sb_") || token === channel.token) return
    const verified = Jwt.verify(token, this.config.jwtSecret, this.env.now())
    if (verified._tag !== "Ok") return this.shutdown(channel, Jwt.shutdownMessage(verified))
    if (channel.isPrivate) {
      const permissions = this.permissions(verified.claims, channel.subtopic)
      const before = channel.permissions
      if ((before.broadcastRead && !permissions.broadcastRead) || (before.presenceRead && !permissions.presenceRead)) {
        return this.shutdown(
          channel,
          `You no longer have permission to read from this Channel topic: ${channel.subtopic}`
        )
      }
      channel.permissions = permissions
      channel.broadcastWrite = undefined
    }
    channel.token = token
    channel.claims = verified.claims
    this.scheduleTokenCheck(channel)
    if (channel.subscriptions.length > 0) this.system(channel, "postgres_changes", "ok", "Subscribed to PostgreSQL")
    this.env.publish({ _tag: "TokenRefreshed", connection: channel.connection.id, topic: channel.topic })
  }

  // ---------------------------------------------------------------------------------
  // broadcast
  // ---------------------------------------------------------------------------------

  private broadcast(channel: Channel, message: Model.Message, binary: boolean) {
    this.stats.broadcastsReceived++
    if (!this.countEvent(channel)) return
    const payload = message.payload
    const ack = channel.config.ack
    if (payloadSize(isRecord(payload) && binary ? payload.payload : payload) > this.config.limits.maxPayloadBytes) {
      if (ack) this.reply(channel.connection, message, fail("payload_size_exceeded"))
      return
    }
    if (channel.isPrivate) {
      if (channel.broadcastWrite === undefined) {
        channel.broadcastWrite = this.permissions(channel.claims, channel.subtopic).broadcastWrite
      }
      if (!channel.broadcastWrite) {
        this.env.log("Debug", "broadcast write denied: dropped without reply", { topic: channel.topic })
        return
      }
    }
    let origin: Origin
    if (binary) {
      if (!isRecord(payload) || typeof payload.event !== "string") {
        this.env.log("Warning", "unsupported binary broadcast push: dropped", { topic: channel.topic })
        return
      }
      origin = { _tag: "User", event: payload.event, payload: payload.payload }
    } else {
      origin = { _tag: "Text", payload }
    }
    this.fanOut(channel.isPrivate, channel.subtopic, origin, channel.config.self ? undefined : channel)
    if (ack) this.reply(channel.connection, message, ok())
  }

  /** Delivers a broadcast to the group `(isPrivate, subtopic)`, except `exclude`. */
  fanOut(isPrivate: boolean, subtopic: string, origin: Origin, exclude?: Channel): number {
    const group = this.groups.get(groupKey(isPrivate, subtopic))
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
            this.env.log("Error", "cannot encode a broadcast", { topic, error: frame.error.message })
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
            this.env.log("Error", "cannot encode a user broadcast", { topic, error: frame.error.message })
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
          this.write(receiver.connection, frameV1!, messageV1!)
        } else {
          if (frameV2 === undefined) prepare(vsn)
          if (frameV2 === null) continue
          this.write(receiver.connection, frameV2!, messageV2!)
        }
        delivered++
      }
    }
    this.stats.broadcastsDelivered += delivered
    this.env.publish({ _tag: "Broadcast", topic, private: isPrivate, origin: origin._tag, delivered })
    return delivered
  }

  // ---------------------------------------------------------------------------------
  // realtime.messages and replay
  // ---------------------------------------------------------------------------------

  /**
   * `realtime.send` / `send_binary`: a row in `realtime.messages`, then its broadcast (kind 4 with meta
   * `{id}`). An `id` already stored is not stored again: the row's broadcast arriving (again) late.
   */
  dbSend(message: {
    readonly topic: string
    readonly event: string
    readonly payload: unknown
    readonly private: boolean
    readonly id: string | undefined
  }): number {
    const subtopic = Topic.subTopicOf(message.topic)
    const id = message.id ?? this.randomUUID()
    this.pruneMessages()
    if (!this.storedIds.has(id)) {
      const insertedAt = this.env.now()
      this.storedMessages.push({
        id,
        topic: subtopic,
        event: message.event,
        payload: message.payload instanceof Uint8Array ? message.payload.slice() : message.payload,
        private: message.private,
        insertedAt
      })
      this.storedIds.add(id)
      this.oldestStored = Math.min(this.oldestStored, insertedAt)
    }
    return this.fanOut(message.private, subtopic, {
      _tag: "User",
      event: message.event,
      payload: message.payload,
      meta: { id }
    })
  }

  /** Rows of `realtime.messages` (of a topic, `"room"` or `"realtime:room"`), oldest first. */
  messages(topic?: string): ReadonlyArray<RS.StoredMessage> {
    this.pruneMessages()
    if (topic === undefined) return [...this.storedMessages]
    const subtopic = Topic.subTopicOf(topic)
    return this.storedMessages.filter((row) => row.topic === subtopic)
  }

  /** The janitor: rows older than the retention are gone. */
  private pruneMessages() {
    const cutoff = this.env.now() - MESSAGE_RETENTION_MILLIS
    if (this.oldestStored >= cutoff) return
    this.oldestStored = Infinity
    this.storedMessages = this.storedMessages.filter((row) => {
      if (row.insertedAt < cutoff) {
        this.storedIds.delete(row.id)
        return false
      }
      this.oldestStored = Math.min(this.oldestStored, row.insertedAt)
      return true
    })
  }

  /**
   * `Messages.replay`: the topic's private broadcast rows inserted at or after `since`, the newest
   * `limit` (ties: insertion order), oldest first.
   */
  private replayMessages(subtopic: string, since: number, limit: number): ReadonlyArray<RS.StoredMessage> {
    this.pruneMessages()
    const rows = this.storedMessages
      .filter((row) => row.topic === subtopic && row.private && row.insertedAt >= since)
      .sort((a, b) => a.insertedAt - b.insertedAt) // stable: a `TestClock` set back keeps the order sane
    return rows.slice(Math.max(0, rows.length - limit))
  }

  /**
   * A replayed row, pushed by the channel: text `broadcast` `{type, event, payload, meta}` for JSON, kind 4
   * with the meta for binary (vsn 2.0.0; vsn 1.0.0 cannot carry it: skipped).
   */
  private pushReplayed(channel: Channel, row: RS.StoredMessage) {
    if (row.payload instanceof Uint8Array && channel.connection.handshake.vsn === "1.0.0") return
    this.push(channel, Constants.Events.broadcast, {
      type: Constants.Events.broadcast,
      event: row.event,
      payload: row.payload,
      meta: { replayed: true, id: row.id }
    })
  }

  // ---------------------------------------------------------------------------------
  // presence
  // ---------------------------------------------------------------------------------

  private presenceEvent(channel: Channel, message: Model.Message) {
    const limits = this.config.limits
    const now = this.env.now()
    if (channel.presenceCalls.hit(now) > limits.clientPresenceMaxCalls) {
      return this.shutdown(channel, "Client presence rate limit exceeded")
    }
    if (this.presenceCounter.hit(now) > limits.maxPresenceEventsPerSecond) {
      return this.shutdown(channel, "Too many presence messages per second")
    }
    const payload = isRecord(message.payload) ? message.payload : {}
    if (payload.event === undefined || payload.event === null) return this.reply(channel.connection, message, ok())
    const event = typeof payload.event === "string" ? payload.event.toLowerCase() : undefined
    if (event !== "track" && event !== "untrack") return this.reply(channel.connection, message, fail())
    if (channel.isPrivate && !this.permissions(channel.claims, channel.subtopic).presenceWrite) {
      return this.reply(channel.connection, message, fail())
    }
    if (event === "untrack") {
      this.reply(channel.connection, message, ok())
      return this.untrack(channel)
    }
    const meta = payload.payload
    if (!isRecord(meta)) {
      return this.reply(channel.connection, message, fail({ reason: "Presence track payload must be a map" }))
    }
    if (payloadSize(meta) > limits.maxPayloadBytes) return this.shutdown(channel, "Track message size exceeded")
    channel.presenceEnabled = true
    this.reply(channel.connection, message, ok())
    this.track(channel, meta)
  }

  private newPhxRef(): string {
    return Buffer.from(`phx:${++this.nextPhxRef}`).toString("base64url")
  }

  /** Tracks (or updates) the channel's presence. */
  track(channel: Channel, payload: Record<string, unknown>) {
    const previous = channel.tracked
    if (previous !== undefined && deepEqual(previous.payload, payload)) return
    const meta: Record<string, unknown> = previous === undefined
      ? { ...payload, phx_ref: this.newPhxRef() }
      : { ...payload, phx_ref: this.newPhxRef(), phx_ref_prev: previous.meta.phx_ref }
    let table = this.presence.get(channel.groupKey)
    if (table === undefined) {
      table = new Map()
      this.presence.set(channel.groupKey, table)
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
    this.presenceDiff(
      channel,
      { [channel.presenceKey]: { metas: [meta] } },
      previous === undefined ? {} : { [channel.presenceKey]: { metas: [previous.meta] } }
    )
  }

  untrack(channel: Channel) {
    const previous = channel.tracked
    if (previous === undefined) return
    channel.tracked = undefined
    const table = this.presence.get(channel.groupKey)
    const entries = table?.get(channel.presenceKey)
    if (entries !== undefined) {
      const index = entries.findIndex((entry) => entry.channel === channel)
      if (index >= 0) entries.splice(index, 1)
      if (entries.length === 0) table!.delete(channel.presenceKey)
      if (table!.size === 0) this.presence.delete(channel.groupKey)
    }
    this.presenceDiff(channel, {}, { [channel.presenceKey]: { metas: [previous.meta] } })
  }

  private presenceDiff(channel: Channel, joins: object, leaves: object) {
    const group = this.groups.get(channel.groupKey)
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
        this.write(receiver.connection, frame, message)
      }
    }
    this.stats.presenceDiffs++
    this.env.publish({ _tag: "PresenceChanged", topic: channel.topic, private: channel.isPrivate })
  }

  /** `Phoenix.Presence` `group/1` of a fan-out group. */
  presenceState(key: string): Record<string, { readonly metas: ReadonlyArray<Record<string, unknown>> }> {
    const state: Record<string, { metas: Array<Record<string, unknown>> }> = {}
    const table = this.presence.get(key)
    if (table === undefined) return state
    for (const [presenceKey, entries] of table) {
      if (entries.length > 0) state[presenceKey] = { metas: entries.map((entry) => entry.meta) }
    }
    return state
  }

  presenceStateOf(topic: string, isPrivate: boolean) {
    return this.presenceState(groupKey(isPrivate, Topic.subTopicOf(topic)))
  }

  // ---------------------------------------------------------------------------------
  // postgres changes
  // ---------------------------------------------------------------------------------

  emitChange(change: Postgres.Change): number {
    let channels = 0
    for (const connection of this.connections.values()) {
      for (const channel of connection.channels.values()) {
        if (channel.subscriptions.length === 0) continue
        const ids: Array<number> = []
        const matched: Array<Postgres.Subscription> = []
        for (const subscription of channel.subscriptions) {
          if (!ids.includes(subscription.id) && subscription.matches(change)) {
            ids.push(subscription.id)
            matched.push(subscription)
          }
        }
        if (ids.length === 0) continue
        this.send(connection, {
          joinRef: null,
          ref: null,
          topic: channel.topic,
          event: Constants.Events.postgresChanges,
          payload: { ids, data: Postgres.projectFor(change, matched) }
        })
        channels++
      }
    }
    this.stats.changesDelivered += channels
    this.env.publish({ _tag: "ChangeEmitted", table: `${change.schema}.${change.table}`, delivered: channels })
    return channels
  }

  // ---------------------------------------------------------------------------------
  // queries
  // ---------------------------------------------------------------------------------

  *channels(): Iterable<Channel> {
    for (const connection of this.connections.values()) yield* connection.channels.values()
  }

  /** Channels matching the target (all when empty). */
  select(target: { readonly connection?: string | undefined; readonly topic?: string | undefined }): Array<Channel> {
    const topic = target.topic === undefined ? undefined : Topic.topicOf(target.topic)
    const out: Array<Channel> = []
    for (const channel of this.channels()) {
      if (target.connection !== undefined && channel.connection.id !== target.connection) continue
      if (topic !== undefined && channel.topic !== topic) continue
      out.push(channel)
    }
    return out
  }

  selectConnections(connection: string | undefined): Array<Connection> {
    if (connection === undefined) return [...this.connections.values()]
    const found = this.connections.get(connection)
    return found === undefined ? [] : [found]
  }

  findConnection(id: string): Connection | undefined {
    return this.connections.get(id) ?? this.closedConnections.find((c) => c.id === id)
  }

  /** Server shutdown: every socket closed with 1001. */
  stop() {
    this.stopped = true
    for (const connection of [...this.connections.values()]) this.closeConnection(connection, 1001, "server stopped")
  }

  // ---------------------------------------------------------------------------------
  // HTTP support
  // ---------------------------------------------------------------------------------

  /** Counts an HTTP broadcast toward the events/s limit: `false` when over it. */
  countHttpEvent(): { readonly allowed: boolean; readonly count: number } {
    const count = this.eventCounter.hit(this.env.now())
    return { allowed: count <= this.config.limits.maxEventsPerSecond, count }
  }

  policyFor(claims: Jwt.Claims, subtopic: string): RS.Permissions {
    return this.permissions(claims, subtopic)
  }
}

const allowAll: RS.Permissions = { broadcastRead: true, broadcastWrite: true, presenceRead: true, presenceWrite: true }
const denyAll: RS.Permissions = {
  broadcastRead: false,
  broadcastWrite: false,
  presenceRead: false,
  presenceWrite: false
}
