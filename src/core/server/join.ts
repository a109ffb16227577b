/**
 * Joins on the test server: the checks of the real server in its order (topic, private-only,
 * limits, token, read permissions, replay), the accepted channel's reply, replayed messages,
 * `presence_state`, Postgres subscriptions and token check; and the join rules a test injects
 * (delay or reject the next joins).
 */
import * as Constants from "../protocol/constants.js"
import type * as Model from "../protocol/model.js"
import * as Topic from "../topic.js"
import * as Broadcast from "./broadcast.js"
import * as Changes from "./changes.js"
import * as ServerConfig from "./config.js"
import type { Engine } from "./engine.js"
import * as JoinConfig from "./joinConfig.js"
import * as Jwt from "./jwt.js"
import * as Messages from "./messages.js"
import { fail, isRecord, ok } from "./payload.js"
import * as Postgres from "./postgres.js"
import { type Connection, ServerChannel } from "./state.js"
import * as Tokens from "./tokens.js"

/** A join rule: the next `remaining` joins (of `topic`, or any) wait `delayMillis`, then fail with `reject` if given. */
interface Rule {
  readonly topic: string | undefined
  remaining: number
  readonly delayMillis: number
  readonly reject: string | undefined
}

/** The join rules a test injects, first match first. */
export class Rules {
  private rules: Array<Rule> = []

  add(topic: string | undefined, times: number, delayMillis: number, reject: string | undefined) {
    this.rules.push({
      topic: topic === undefined ? undefined : Topic.topicOf(topic),
      remaining: times,
      delayMillis,
      reject
    })
  }

  /** The rule that applies to a join of `topic`, if any (and counts it). */
  take(topic: string): Rule | undefined {
    const index = this.rules.findIndex((rule) => rule.topic === undefined || rule.topic === topic)
    if (index < 0) return undefined
    const rule = this.rules[index]!
    if (--rule.remaining <= 0) this.rules.splice(index, 1)
    return rule
  }

  clear() {
    this.rules = []
  }
}

/** A `phx_join`: an existing channel of the topic ends, then the join proceeds (after a join rule's delay). */
export const join = (engine: Engine, connection: Connection, message: Model.Message) => {
  const { topic } = message
  const payload = isRecord(message.payload) ? message.payload : {}
  engine.lastJoinPayloads.set(topic, message.payload)
  if (!Topic.hasPrefix(topic)) return engine.reply(connection, message, fail({ reason: "unmatched topic" }))
  const existing = connection.channels.get(topic)
  if (existing !== undefined) {
    engine.close(existing, Constants.Events.close, {})
    engine.teardown(existing, "duplicate")
  }
  connection.pendingJoins.get(topic)?.cancel()
  connection.pendingJoins.delete(topic)
  const rule = engine.joinRules.take(topic)
  const after: Array<{ readonly message: Model.Message; readonly binary: boolean }> = []
  const proceed = () => {
    connection.pendingJoins.delete(topic)
    if (!connection.open) return
    if (rule?.reject !== undefined) joinError(engine, connection, message, rule.reject)
    else accept(engine, connection, message, payload)
    for (const next of after) if (connection.open) engine.route(connection, next.message, next.binary)
  }
  if (rule === undefined || rule.delayMillis <= 0) return proceed()
  const cancel = engine.env.schedule(rule.delayMillis, proceed)
  connection.pendingJoins.set(topic, { cancel, after })
}

/** A join error reply, after the configured delay; `closeSocket`: then the socket closes with 1001. */
const joinError = (
  engine: Engine,
  connection: Connection,
  message: Model.Message,
  reason: string,
  closeSocket = false
) => {
  engine.stats.joinsRejected++
  engine.env.log("Debug", "join rejected", { connection: connection.id, topic: message.topic, reason })
  engine.env.publish({ _tag: "JoinRejected", connection: connection.id, topic: message.topic, reason })
  engine.timer(connection, engine.config.joinErrorDelayMillis, () => {
    engine.reply(connection, message, fail({ reason }))
    if (closeSocket) engine.closeConnection(connection, 1001, "")
  })
}

/** The presence key of a join: `config.presence.key`, or a fresh UUID when empty. */
const presenceKeyOf = (engine: Engine, key: unknown): string =>
  key === "" || key === undefined || key === null
    ? engine.randomUUID()
    : typeof key === "string"
    ? key
    : typeof key === "object"
    ? JSON.stringify(key)
    : String(key)

const accept = (engine: Engine, connection: Connection, message: Model.Message, payload: Record<string, unknown>) => {
  const { topic } = message
  const subtopic = Topic.subTopicOf(topic)
  const problems: Array<string> = []
  const config = JoinConfig.parseJoinConfig(payload, problems)
  if (problems.length > 0) {
    engine.env.log("Warning", "InvalidJoinPayload", { topic, problems })
  }
  const limits = engine.config.limits
  const now = engine.env.now()
  if (subtopic === "") return joinError(engine, connection, message, "TopicNameRequired: You must provide a topic name")
  if (engine.config.privateOnly && !config.private) {
    return joinError(engine, connection, message, "PrivateOnly: This project only allows private channels")
  }
  if (engine.openConnections() > limits.maxConcurrentUsers) {
    return joinError(engine, connection, message, "ConnectionRateLimitReached: Too many connected users")
  }
  if (engine.joinCounter.hit(now) > limits.maxJoinsPerSecond) {
    return joinError(engine, connection, message, "ClientJoinRateLimitReached: Too many joins per second", true)
  }
  if (connection.channels.size >= limits.maxChannelsPerClient) {
    return joinError(engine, connection, message, "ChannelRateLimitReached: Too many channels")
  }
  const candidate = payload.access_token ?? payload.user_token ?? connection.handshake.token
  const token = typeof candidate === "string" && candidate.startsWith("sb_")
    ? connection.handshake.token
    : candidate
  const verified = Jwt.verify(token, engine.config.jwtSecret, now)
  if (verified._tag !== "Ok") return joinError(engine, connection, message, Jwt.joinReason(verified))
  const permissions = config.private ? engine.permissions(verified.claims, subtopic) : ServerConfig.allPermissions
  if (config.private && !permissions.broadcastRead && !permissions.presenceRead) {
    return joinError(
      engine,
      connection,
      message,
      `Unauthorized: You do not have permissions to read from this Channel topic: ${subtopic}`
    )
  }
  const replay = Messages.replayParams(config, permissions.broadcastRead, subtopic)
  if (replay._tag === "Error") return joinError(engine, connection, message, replay.reason)
  const replayed = replay._tag === "Replay" ? engine.messageStore.replay(subtopic, replay.since, replay.limit) : []

  // accepted
  const key = presenceKeyOf(engine, config.presenceKey)
  const bindings = config.postgresChanges.map((params) => ({ id: Postgres.bindingId(params), params }))
  const channel = new ServerChannel(
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
  if (engine.config.presenceEnabled) channel.presenceEnabled = true
  if (replayed.length > 0) channel.replayedIds = new Set(replayed.map((row) => row.id))
  connection.channels.set(topic, channel)
  let group = engine.groups.get(channel.groupKey)
  if (group === undefined) {
    group = new Set()
    engine.groups.set(channel.groupKey, group)
  }
  group.add(channel)
  engine.stats.joins++
  engine.reply(
    connection,
    message,
    ok(config.present ? { postgres_changes: bindings.map((b) => ({ ...b.params, id: b.id })) } : {})
  )
  for (const row of replayed) Broadcast.pushReplayed(engine, channel, row)
  if (channel.presenceEnabled && channel.canReadPresence) {
    engine.push(channel, Constants.Events.presenceState, engine.presence.state(channel.groupKey))
  }
  if (bindings.length > 0) Changes.subscribe(engine, channel)
  if (config.replicationReady) engine.system(channel, "system", "ok", "Replication connection established")
  Tokens.scheduleCheck(engine, channel)
  engine.env.log("Debug", "joined", { connection: connection.id, topic, joinRef: message.joinRef })
  engine.env.publish({ _tag: "ChannelJoined", connection: connection.id, topic, joinRef: message.joinRef })
}
