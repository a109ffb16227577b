/**
 * Inspection of the test server: plain views of its sockets and channels, presence tables and a
 * snapshot of its whole state, for assertions and `waitFor`.
 */
import type * as Model from "../protocol/model.js"
import * as Topic from "../topic.js"
import type { Engine } from "./engine.js"
import type * as RS from "./model.js"
import type { Connection, ServerChannel } from "./state.js"

/** One socket. */
export interface ConnectionInfo {
  /** `"c1"`, `"c2"`, … in connection order. */
  readonly id: string
  readonly transport: "memory" | "ws"
  readonly url: string
  readonly path: string
  readonly vsn: Model.Vsn
  /** The query parameters (`apikey`, `vsn`, `log_level`, …). */
  readonly params: Readonly<Record<string, string>>
  /** Request headers (lower-cased). */
  readonly headers: Readonly<Record<string, string>>
  /** Claims of the connect-time key. */
  readonly claims: Readonly<Record<string, unknown>>
  readonly open: boolean
  readonly closeCode: number | undefined
  readonly closeReason: string | undefined
  readonly openedAt: number
  /** Joined topics. */
  readonly topics: ReadonlyArray<string>
  readonly heartbeatsPaused: boolean
}

/** One joined channel. */
export interface ChannelInfo {
  readonly connection: string
  readonly topic: string
  readonly subtopic: string
  readonly joinRef: string | null
  readonly private: boolean
  readonly ack: boolean
  readonly self: boolean
  readonly presenceEnabled: boolean
  readonly presenceKey: string
  /** The postgres_changes bindings with the ids the server gave them. */
  readonly postgresChanges: ReadonlyArray<{ readonly id: number; readonly params: Readonly<Record<string, unknown>> }>
  /** The bindings are subscribed (`Subscribed to PostgreSQL` was sent). */
  readonly postgresSubscribed: boolean
  readonly joinPayload: unknown
  /** Claims of the channel's current token. */
  readonly claims: Readonly<Record<string, unknown>>
  readonly permissions: RS.Permissions
  /** The channel's tracked presence meta (with `phx_ref`), if any. */
  readonly tracked: Readonly<Record<string, unknown>> | undefined
}

/**
 * The server's presence table of a topic (`Phoenix.Presence` state): metas per key, each with its
 * `phx_ref`, as the server would send it in `presence_state`.
 */
export type PresenceTable = Readonly<
  Record<string, { readonly metas: ReadonlyArray<Readonly<Record<string, unknown>>> }>
>

/**
 * A view of the server's state, for assertions and `waitFor`. Read it synchronously: it reflects the
 * server at the time it was taken (the frame lists are live, append-only).
 */
export interface ServerState {
  /** The server's `Clock` time in milliseconds. */
  readonly now: number
  /** Open sockets. */
  readonly connections: ReadonlyArray<ConnectionInfo>
  /** Recently closed sockets (the last 100). */
  readonly closedConnections: ReadonlyArray<ConnectionInfo>
  /** Every joined channel. */
  readonly channels: ReadonlyArray<ChannelInfo>
  readonly stats: RS.Stats
  /** An open or closed socket by id. */
  readonly connection: (id: string) => ConnectionInfo | undefined
  /** Channels joined to a topic (`"room"` or `"realtime:room"`), public and private unless `private` is given. */
  readonly subscribers: (
    topic: string,
    options?: { readonly private?: boolean | undefined }
  ) => ReadonlyArray<ChannelInfo>
  /** The presence table of a topic (public unless `private: true`). */
  readonly presence: (topic: string, options?: { readonly private?: boolean | undefined }) => PresenceTable
  /** The payload of the last `phx_join` for a topic (any socket, accepted or not). */
  readonly lastJoinPayload: (topic: string) => unknown
  /** Rows of `realtime.messages` of a topic (`"room"` or `"realtime:room"`; all when omitted), oldest first. */
  readonly messages: (topic?: string) => ReadonlyArray<RS.StoredMessage>
  /** Frames a socket sent to the server, decoded, in order. */
  readonly received: (connection: string) => ReadonlyArray<RS.RecordedFrame>
  /** Frames the server sent to a socket, in order. */
  readonly sent: (connection: string) => ReadonlyArray<RS.RecordedFrame>
}

/** The view of a socket. */
export const connectionInfo = (c: Connection): ConnectionInfo => ({
  id: c.id,
  transport: c.transport,
  url: c.handshake.url,
  path: c.handshake.path,
  vsn: c.handshake.vsn,
  params: c.handshake.params,
  headers: c.handshake.headers,
  claims: c.handshake.claims,
  open: c.open,
  closeCode: c.closeCode,
  closeReason: c.closeReason,
  openedAt: c.openedAt,
  topics: [...c.channels.keys()],
  heartbeatsPaused: c.heartbeatsPaused
})

/** The view of a channel. */
export const channelInfo = (ch: ServerChannel): ChannelInfo => ({
  connection: ch.connection.id,
  topic: ch.topic,
  subtopic: ch.subtopic,
  joinRef: ch.joinRef,
  private: ch.isPrivate,
  ack: ch.config.ack,
  self: ch.config.self,
  presenceEnabled: ch.presenceEnabled,
  presenceKey: ch.presenceKey,
  postgresChanges: ch.bindings,
  postgresSubscribed: ch.subscriptions.length > 0,
  joinPayload: ch.joinPayload,
  claims: ch.claims,
  permissions: ch.permissions,
  tracked: ch.tracked?.meta
})

/** A snapshot of the server's state. */
export const snapshot = (engine: Engine): ServerState => {
  const channels = [...engine.channels()].map(channelInfo)
  return {
    now: engine.env.now(),
    connections: [...engine.connections.values()].map(connectionInfo),
    closedConnections: engine.closedConnections.map(connectionInfo),
    channels,
    stats: { ...engine.stats },
    connection: (id) => {
      const c = engine.findConnection(id)
      return c === undefined ? undefined : connectionInfo(c)
    },
    subscribers: (topic, options) => {
      const full = Topic.topicOf(topic)
      return channels.filter((ch) =>
        ch.topic === full && (options?.private === undefined || ch.private === options.private)
      )
    },
    presence: (topic, options) => engine.presenceStateOf(topic, options?.private === true),
    lastJoinPayload: (topic) => engine.lastJoinPayloads.get(Topic.topicOf(topic)),
    messages: (topic) => engine.messages(topic),
    received: (id) => engine.findConnection(id)?.received ?? [],
    sent: (id) => engine.findConnection(id)?.sent ?? []
  }
}
