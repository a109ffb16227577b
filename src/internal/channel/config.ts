/**
 * What a channel's config means on the wire: the join payload, the key that makes two configs the
 * same channel, the topic, the join errors that are permanent, and `system` messages. Pure.
 *
 * @internal
 */
import * as Option from "effect/Option"
import * as PostgresChanges from "../../PostgresChanges.js"
import type * as Protocol from "../../Protocol.js"
import type * as Channel from "../../RealtimeChannel.js"

/** Join errors after which a rejoin cannot succeed without a change on the user's side. */
export const permanentCodes = new Set([
  "TopicNameRequired",
  "Unauthorized",
  "MalformedJWT",
  "JwtSignatureError",
  "JwtSignerError",
  "PrivateOnly",
  "TenantNotFound",
  "RealtimeDisabledForTenant",
  "UnableToReplayMessages",
  "InvalidJWTToken",
  "Unknown"
])

/** The server's reason for closing a channel whose `track` payload was too large. */
export const TRACK_TOO_LARGE = "Track message size exceeded"

/** A join error after which a rejoin cannot succeed without a change on the user's side. */
export const isPermanent = (error: Channel.JoinError): boolean =>
  (error._tag === "JoinRejected" && permanentCodes.has(error.code) &&
    // the server also answers UnableToReplayMessages when the replay query fails: that one passes
    (error.code !== "UnableToReplayMessages" || /not valid|not allowed/.test(error.reason))) ||
  error._tag === "InvalidArgument" || error._tag === "PostgresBindingMismatch"

/** A `system` message's fields, whatever the server sent. */
export const decodeSystem = (payload: unknown): Channel.SystemMessage | undefined => {
  if (typeof payload !== "object" || payload === null) return undefined
  const p = payload as Record<string, unknown>
  return {
    extension: typeof p.extension === "string" ? p.extension : "",
    status: typeof p.status === "string" ? p.status : "",
    message: typeof p.message === "string" ? p.message : "",
    channel: typeof p.channel === "string" ? p.channel : undefined
  }
}

/** A value with its object keys sorted and `undefined` fields dropped. */
export const canonical = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(canonical)
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key]
      if (v !== undefined) out[key] = canonical(v)
    }
    return out
  }
  return value
}

/** A stable text of what makes two configs the same channel on the wire. @internal */
export const configKey = (config: Channel.ChannelConfig): string => {
  // configs are readonly data, and apps tend to reuse one object for many channels
  let key = configKeys.get(config)
  if (key === undefined) {
    key = JSON.stringify(canonical({ ...config, postgresChanges: config.postgresChanges?.map(PostgresChanges.toWire) }))
    configKeys.set(config, key)
  }
  return key
}
const configKeys = new WeakMap<Channel.ChannelConfig, string>()

/** @internal */
export const topicOf = (name: string): string => name.startsWith("realtime:") ? name : `realtime:${name}`

/** The join payload of a config, as realtime-js sends it (`replaySince`: a rejoin's replay start). */
export const joinPayload = (
  config: Channel.ChannelConfig,
  options: {
    readonly wireBindings: ReadonlyArray<PostgresChanges.WireBinding>
    readonly presenceEnabled: boolean
    readonly token: Option.Option<string>
    readonly replaySince: number | undefined
  }
): Protocol.JoinPayload => {
  const replay = config.broadcast?.replay
  const since = options.replaySince ?? replay?.since
  const broadcast: Protocol.BroadcastConfig = {
    ack: config.broadcast?.ack ?? false,
    self: config.broadcast?.self ?? false,
    ...(replay === undefined || since === undefined
      ? {}
      : { replay: replay.limit === undefined ? { since } : { since, limit: replay.limit } }),
    ...(config.broadcast?.replicationReady ? { replication_ready: true } : {})
  }
  const pgOptions = config.postgresChangesOptions
  const wire: Protocol.JoinConfig = {
    broadcast,
    presence: { key: config.presence?.key ?? "", enabled: options.presenceEnabled },
    postgres_changes: options.wireBindings,
    ...(pgOptions === undefined ? {} : {
      postgres_changes_options: {
        ...(pgOptions.wait === undefined ? {} : { wait: pgOptions.wait }),
        ...(pgOptions.timeout === undefined ? {} : { timeout: pgOptions.timeout })
      }
    }),
    private: config.private ?? false
  }
  return Option.isSome(options.token) ? { config: wire, access_token: options.token.value } : { config: wire }
}
