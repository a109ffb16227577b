/**
 * The test server's state per socket and per joined channel: what a handshake accepted, the
 * connection's channels, pending joins, timers and recorded frames; a channel's token, permissions,
 * presence and subscriptions, and the fan-out group it belongs to.
 */
import type * as Model from "../protocol/model.js"
import * as Serializer from "../protocol/serializer.js"
import * as Topic from "../topic.js"
import type * as Handshake from "./handshake.js"
import type * as JoinConfig from "./joinConfig.js"
import type * as Jwt from "./jwt.js"
import { SlidingCounter } from "./limits.js"
import type * as RS from "./model.js"
import type * as Postgres from "./postgres.js"

/** What a WebSocket connection looks like to the engine (a `FakeSocket.Peer`, or a `ws` socket). */
export interface Peer {
  readonly send: (frame: Model.Frame) => void
  readonly close: (code: number, reason: string) => void
  readonly terminate: () => void
}

/** One socket's state. */
export class Connection {
  open = true
  closeCode: number | undefined = undefined
  closeReason: string | undefined = undefined
  heartbeatsPaused = false
  lastActivity: number
  idleCancel: (() => void) | undefined = undefined
  readonly channels = new Map<string, ServerChannel>()
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
    readonly handshake: Handshake.Accepted,
    readonly openedAt: number
  ) {
    this.serializer = Serializer.server(handshake.vsn)
    this.lastActivity = openedAt
  }
}

/** A channel's entry in a presence table: the meta it tracks (with `phx_ref`). */
export interface PresenceEntry {
  readonly channel: ServerChannel
  readonly meta: Record<string, unknown>
}

const noIds: ReadonlySet<string> = new Set()

/** The fan-out group of a channel: its privacy and subtopic (`"public:room"`, `"private:room"`). */
export const groupKey = (isPrivate: boolean, subtopic: string) => `${isPrivate ? "private" : "public"}:${subtopic}`

/** One joined channel's state. */
export class ServerChannel {
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
    readonly config: JoinConfig.JoinConfig,
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
