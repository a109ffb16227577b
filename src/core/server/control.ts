/**
 * What a test does to the test server, Effect-free: connect in memory, inject messages, changes and
 * faults (drop sockets, stop heartbeats, reject or delay joins, drain the tenant), sign tokens and
 * inspect. Each operation is synchronous; the editions' `RealtimeServer` runs each in an effect.
 */
import * as Constants from "../protocol/constants.js"
import type * as Model from "../protocol/model.js"
import * as Topic from "../topic.js"
import * as Changes from "./changes.js"
import type { Engine } from "./engine.js"
import * as HttpApi from "./http.js"
import * as Inspect from "./inspect.js"
import * as Jwt from "./jwt.js"
import * as Keys from "./keys.js"
import type * as RS from "./model.js"
import type { ServerChannel } from "./state.js"

/** Which channels an operation applies to: all, or those of a socket and/or a topic. */
export interface Target {
  readonly connection?: string | undefined
  /** `"room"` or `"realtime:room"`. */
  readonly topic?: string | undefined
}

/** A client socket connecting in memory (an edition's `FakeSocket.Peer`). */
export interface MemoryPeer {
  /** The URL the client connected to (with its query string). */
  readonly url: string
  /** The handshake headers the client gave, lower-cased (none when absent). */
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly send: (frame: Model.Frame) => void
  readonly close: (code?: number, reason?: string) => void
  readonly terminate: () => void
}

/** What the server does with a socket connecting in memory: its handlers, or a refusal. */
export type MemoryAnswer =
  | { readonly onMessage: (frame: Model.Frame) => void; readonly onClose: (code: number, reason: string) => void }
  | { readonly refuse: { readonly status: number; readonly body: string } }

/** The in-memory server end (an edition's `FakeSocket.Acceptor`): the handshake, then the engine's connection. */
export const acceptor = (engine: Engine) => (peer: MemoryPeer): MemoryAnswer => {
  if (engine.stopped) return { refuse: { status: 503, body: "server stopped" } }
  const handshake = engine.handshake(peer.url, peer.headers ?? {})
  if (handshake._tag === "Refuse") return { refuse: { status: handshake.status, body: handshake.body } }
  const connection = engine.open(
    { send: peer.send, close: (code, reason) => peer.close(code, reason), terminate: peer.terminate },
    handshake,
    "memory"
  )
  return {
    onMessage: (frame) => engine.onFrame(connection, frame),
    onClose: (code, reason) => engine.onClose(connection, code, reason)
  }
}

/** Applies `f` to the targeted channels; returns how many there were. */
const forChannels = (engine: Engine, target: Target, f: (channel: ServerChannel) => void): number => {
  const channels = engine.select(target)
  for (const channel of channels) f(channel)
  return channels.length
}

/** Where a client reaches the server: the WebSocket endpoint, the HTTP base and the bound port. */
export interface Endpoints {
  readonly url: string
  readonly httpUrl: string
  readonly port: number | undefined
}

/** The in-memory endpoints (default `"ws://realtime.test/socket"`; its HTTP base has the same host). */
export const memoryEndpoints = (memoryUrl: string | undefined): Endpoints => {
  const url = memoryUrl ?? "ws://realtime.test/socket"
  const http = new URL(url)
  return { url, httpUrl: `${http.protocol === "wss:" ? "https:" : "http:"}//${http.host}`, port: undefined }
}

/** The endpoints of a bound listener. */
export const listenEndpoints = (listener: { readonly host: string; readonly port: number }): Endpoints => {
  const { host, port } = listener
  const authority = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`
  return { url: `ws://${authority}/socket`, httpUrl: `http://${authority}`, port }
}

/** The default lifetime of a token `makeToken` signs, in milliseconds. */
const ONE_HOUR = 60 * 60 * 1000

/** The server's keys: its anon key, a service-role key and its secret. */
export const keys = (engine: Engine) => ({
  apiKey: engine.config.apiKey,
  serviceRoleKey: Keys.serviceRoleKey(engine.config.jwtSecret),
  jwtSecret: engine.config.jwtSecret
})

/**
 * The operations of a test on the server, with their defaults (see the editions' `Server` for each);
 * `D`: the edition's duration input, `toMillis` its conversion.
 */
export const operations = <D>(engine: Engine, toMillis: (duration: D) => number) => ({
  handleHttp: (request: RS.HttpRequest): RS.HttpResponse => HttpApi.handleRequest(engine, request),
  makeToken: (options?: {
    readonly role?: string | undefined
    readonly expiresIn?: D | undefined
    readonly claims?: Readonly<Record<string, unknown>> | undefined
  }): string =>
    Jwt.sign(
      {
        ...options?.claims,
        role: options?.role ?? "authenticated",
        exp: Math.floor(
          (engine.env.now() + (options?.expiresIn === undefined ? ONE_HOUR : toMillis(options.expiresIn))) / 1000
        )
      },
      engine.config.jwtSecret
    ),

  // injection
  emitChange: (change: Changes.ChangeInput): number => engine.emitChange(Changes.fromInput(change, engine.env.now())),
  dbSend: (message: {
    readonly topic: string
    readonly event: string
    readonly payload: unknown
    readonly private?: boolean | undefined
    readonly id?: string | undefined
  }): number =>
    engine.dbSend({
      topic: message.topic,
      event: message.event,
      payload: message.payload,
      private: message.private ?? true,
      id: message.id
    }),
  push: (target: Target, event: string, payload: unknown): number =>
    forChannels(engine, target, (channel) => engine.push(channel, event, payload)),
  sendSystem: (
    target: Target,
    message: {
      readonly message: string
      readonly status?: "ok" | "error" | undefined
      readonly extension?: string | undefined
    }
  ): number =>
    forChannels(
      engine,
      target,
      (channel) => engine.system(channel, message.extension ?? "system", message.status ?? "ok", message.message)
    ),

  // faults
  dropConnection: (options?: {
    readonly connection?: string | undefined
    readonly code?: number | undefined
    readonly reason?: string | undefined
    readonly abrupt?: boolean | undefined
  }): number => {
    const connections = engine.selectConnections(options?.connection)
    for (const connection of connections) {
      if (options?.abrupt === true) engine.terminateConnection(connection)
      else engine.closeConnection(connection, options?.code ?? 1000, options?.reason ?? "")
    }
    return connections.length
  },
  pauseHeartbeats: (connection?: string): void => {
    if (connection === undefined) engine.heartbeatsPaused = true
    else for (const c of engine.selectConnections(connection)) c.heartbeatsPaused = true
  },
  resumeHeartbeats: (connection?: string): void => {
    if (connection === undefined) {
      engine.heartbeatsPaused = false
      for (const c of engine.connections.values()) c.heartbeatsPaused = false
    } else {
      for (const c of engine.selectConnections(connection)) c.heartbeatsPaused = false
    }
  },
  rejectJoins: (options: {
    readonly reason: string
    readonly topic?: string | undefined
    readonly times?: number | undefined
  }): void => engine.addJoinRule(options.topic, options.times ?? 1, 0, options.reason),
  delayJoins: (options: {
    readonly delay: D
    readonly topic?: string | undefined
    readonly times?: number | undefined
  }): void => engine.addJoinRule(options.topic, options.times ?? 1, toMillis(options.delay), undefined),
  crashChannel: (target: Target): number =>
    forChannels(engine, target, (channel) => engine.crash(channel, engine.config.crashPayload)),
  shutdownChannel: (target: Target, message: string): number =>
    forChannels(engine, target, (channel) => engine.shutdown(channel, message)),
  refuseConnections: (
    count: number,
    options?: { readonly status?: number | undefined; readonly error?: string | undefined }
  ): void => engine.refuseConnections(count, options?.status ?? 500, options?.error ?? "Error connecting to Realtime"),
  expireToken: (target?: Target): number => forChannels(engine, target ?? {}, (channel) => engine.expireToken(channel)),

  // inspection
  received: (connection: string): ReadonlyArray<RS.RecordedFrame> => [
    ...(engine.findConnection(connection)?.received ?? [])
  ],
  sent: (connection: string): ReadonlyArray<RS.RecordedFrame> => [...(engine.findConnection(connection)?.sent ?? [])],
  subscribers: (
    topic: string,
    options?: { readonly private?: boolean | undefined }
  ): ReadonlyArray<Inspect.ChannelInfo> => Inspect.snapshot(engine).subscribers(topic, options),
  presence: (topic: string, options?: { readonly private?: boolean | undefined }): Inspect.PresenceTable =>
    engine.presenceStateOf(topic, options?.private === true),
  messages: (topic?: string): ReadonlyArray<RS.StoredMessage> => engine.messages(topic)
})

/** The operations of a test that take no argument (an edition makes each an effect). */
export const actions = (engine: Engine) => ({
  /** Forgets pending join rules. */
  clearJoinRules: (): void => engine.clearJoinRules(),
  /** Tenant drain: `system` `Server requested disconnect` on every channel, then every socket closed with 1012. */
  disconnectAll: (): number => {
    const connections = [...engine.connections.values()]
    for (const connection of connections) {
      for (const channel of connection.channels.values()) {
        engine.send(connection, {
          joinRef: null,
          ref: null,
          topic: channel.topic,
          event: Constants.Events.system,
          payload: { extension: "system", status: "ok", message: "Server requested disconnect" }
        })
      }
      engine.closeConnection(connection, 1012, "")
    }
    return connections.length
  },
  state: (): Inspect.ServerState => Inspect.snapshot(engine),
  connections: (): ReadonlyArray<Inspect.ConnectionInfo> =>
    [...engine.connections.values()].map(Inspect.connectionInfo),
  stats: (): RS.Stats => ({ ...engine.stats })
})

/** The payload of the last `phx_join` of a topic (`"room"` or `"realtime:room"`), if there was one. */
export const lastJoinPayload = (engine: Engine, topic: string): { readonly payload: unknown } | undefined => {
  const full = Topic.topicOf(topic)
  return engine.lastJoinPayloads.has(full) ? { payload: engine.lastJoinPayloads.get(full) } : undefined
}
