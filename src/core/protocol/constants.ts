/**
 * The protocol's constants: topics, event names, binary kinds and encodings, field limits.
 */

/**
 * The topic of socket-level messages (heartbeats).
 */
export const PHOENIX_TOPIC = "phoenix"

/**
 * Event names of the protocol.
 */
export const Events = {
  join: "phx_join",
  reply: "phx_reply",
  leave: "phx_leave",
  close: "phx_close",
  error: "phx_error",
  heartbeat: "heartbeat",
  broadcast: "broadcast",
  presence: "presence",
  presenceState: "presence_state",
  presenceDiff: "presence_diff",
  postgresChanges: "postgres_changes",
  system: "system",
  accessToken: "access_token"
} as const

/**
 * The kinds (first byte) of vsn 2.0.0 binary frames. `push`, `reply` and `broadcast` are Phoenix's,
 * `userBroadcastPush` (client → server) and `userBroadcast` (server → client) are Supabase's.
 */
export const BinaryKind = {
  push: 0,
  reply: 1,
  broadcast: 2,
  userBroadcastPush: 3,
  userBroadcast: 4
} as const

/**
 * The payload encoding byte of binary kinds 3 and 4.
 */
export const PayloadEncoding = {
  binary: 0,
  json: 1
} as const

/**
 * The largest UTF-8 byte length of a string field (ref, topic, event, metadata) in a binary frame.
 */
export const MAX_FIELD_LENGTH = 255
