/**
 * The test server's plain data: permissions and policies, recorded frames, counters, server events,
 * stored messages and HTTP requests and responses. The edition's `RealtimeServer` re-exports them.
 */
import type * as Model from "../protocol/model.js"

/**
 * What a token may do on a private channel (the RLS policies on `realtime.messages`).
 */
export interface Permissions {
  readonly broadcastRead: boolean
  readonly broadcastWrite: boolean
  readonly presenceRead: boolean
  readonly presenceWrite: boolean
}

/**
 * The private-channel policy: the permissions of a token's claims on a subtopic (the topic without
 * `realtime:`). Evaluated at join (read), on the first broadcast (write, cached), on each presence
 * call (write), after each `access_token` (read re-checked: a lost read permission shuts the channel
 * down) and for private HTTP broadcasts (write).
 */
export type Policy = (claims: Readonly<Record<string, unknown>>, subtopic: string) => Permissions

/**
 * A decoded frame, as the server received or sent it. `binary`: it was a binary frame (kind 3 from a
 * client, kind 4 to a client); `at`: the server's `Clock` time in milliseconds.
 */
export interface RecordedFrame extends Model.Message {
  readonly binary: boolean
  readonly at: number
}

/**
 * Counters since the server started.
 */
export interface Stats {
  readonly connectionsOpened: number
  readonly connectionsRefused: number
  readonly framesReceived: number
  readonly framesSent: number
  readonly malformedFrames: number
  readonly joins: number
  readonly joinsRejected: number
  readonly broadcastsReceived: number
  /** Broadcast frames delivered to subscribers (one per receiving channel). */
  readonly broadcastsDelivered: number
  readonly httpRequests: number
  readonly presenceDiffs: number
  /** `postgres_changes` frames delivered (one per receiving channel). */
  readonly changesDelivered: number
}

/**
 * Why a channel ended.
 */
export type ChannelCloseReason = "leave" | "duplicate" | "shutdown" | "crash" | "socket"

/**
 * What happens on the server, in order (see `events`).
 */
export type ServerEvent =
  | { readonly _tag: "ConnectionOpened"; readonly connection: string }
  | { readonly _tag: "ConnectionRefused"; readonly status: number; readonly body: string }
  | { readonly _tag: "ConnectionClosed"; readonly connection: string; readonly code: number; readonly reason: string }
  | { readonly _tag: "MalformedFrame"; readonly connection: string; readonly error: string }
  | { readonly _tag: "FrameReceived"; readonly connection: string; readonly message: Model.Message }
  | {
    readonly _tag: "ChannelJoined"
    readonly connection: string
    readonly topic: string
    readonly joinRef: string | null
  }
  | { readonly _tag: "JoinRejected"; readonly connection: string; readonly topic: string; readonly reason: string }
  | {
    readonly _tag: "ChannelClosed"
    readonly connection: string
    readonly topic: string
    readonly joinRef: string | null
    readonly reason: ChannelCloseReason
  }
  | { readonly _tag: "TokenRefreshed"; readonly connection: string; readonly topic: string }
  | {
    readonly _tag: "Broadcast"
    readonly topic: string
    readonly private: boolean
    readonly origin: "Text" | "User"
    readonly delivered: number
  }
  | { readonly _tag: "PresenceChanged"; readonly topic: string; readonly private: boolean }
  | { readonly _tag: "ChangeEmitted"; readonly table: string; readonly delivered: number }
  | { readonly _tag: "HttpRequest"; readonly method: string; readonly path: string; readonly status: number }

/**
 * A row of the server's `realtime.messages`, written by `dbSend` (only messages from the database are
 * stored, and so replayable). Rows older than 72 hours are dropped, as the server's janitor does.
 */
export interface StoredMessage {
  /** A UUID (`dbSend`'s `id`, or a generated one); replays carry it as `meta.id`. */
  readonly id: string
  /** The subtopic (`"room"`), as `realtime.send` stores it. */
  readonly topic: string
  readonly event: string
  /** The JSON payload, or a `Uint8Array` (`realtime.send_binary`). */
  readonly payload: unknown
  /** Only private rows are replayed. */
  readonly private: boolean
  /** `inserted_at`: the server's `Clock` time in milliseconds. */
  readonly insertedAt: number
}

/**
 * An HTTP request to the broadcast API (`path` may carry a query string; a full URL also works).
 */
export interface HttpRequest {
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  readonly body?: Uint8Array | string | undefined
}

/** An HTTP response of the broadcast API. */
export interface HttpResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Uint8Array
}
