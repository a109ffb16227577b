/**
 * The `config` of a join as the test server reads it: leniently, as the real server's
 * `FlexibleBoolean` and defaults for bad fields, with the problems it logs.
 */
import { isRecord } from "./payload.js"

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
