/**
 * What a channel's config means on the wire: the join payload, the key that makes two configs the
 * same channel, the topic, the server's join refusals and which are permanent, and `system` messages.
 * Pure.
 */
import * as Describe from "../describe.js"
import * as Bindings from "../postgres/bindings.js"
import * as Result from "../result.js"
import * as Topic from "../topic.js"

/**
 * A channel's configuration: what realtime-js calls `config`, in camelCase (each edition's
 * `RealtimeChannel.ChannelConfig`, with its own Postgres changes binding).
 */
export interface ChannelConfig<Binding = Bindings.Binding> {
  readonly broadcast?: {
    /** Receive your own broadcasts. Default false. */
    readonly self?: boolean | undefined
    /** The server acknowledges each broadcast; `send` waits for it. Default false. */
    readonly ack?: boolean | undefined
    /** Replay stored messages from `since` (epoch ms) on join; private channels only. */
    readonly replay?: { readonly since: number; readonly limit?: number | undefined } | undefined
    /** The server emits a `system` message once its replication connection is up. */
    readonly replicationReady?: boolean | undefined
  } | undefined
  readonly presence?: {
    /** The presence key; the server generates one when absent. Empty or blank: `InvalidArgument`. */
    readonly key?: string | undefined
    /** Receive presence state and diffs. Default: true when `presence` is given. */
    readonly enabled?: boolean | undefined
  } | undefined
  /** An RLS-authorized channel (policies on `realtime.messages`). */
  readonly private?: boolean | undefined
  /** The Postgres changes to listen to, sent with the join. */
  readonly postgresChanges?: ReadonlyArray<Binding> | undefined
  /** `wait`: the server answers the join once the change feed is live. */
  readonly postgresChangesOptions?: {
    readonly wait?: boolean | undefined
    readonly timeout?: number | undefined
  } | undefined
}

/** The `config` of a join as it goes on the wire (`B`: a Postgres changes binding as sent). */
export interface WireJoinConfig<B = unknown> {
  readonly broadcast: {
    readonly ack: boolean
    readonly self: boolean
    readonly replay?: { readonly since: number; readonly limit?: number }
    readonly replication_ready?: boolean
  }
  readonly presence: { readonly key: string; readonly enabled: boolean }
  readonly postgres_changes: ReadonlyArray<B>
  readonly postgres_changes_options?: { readonly wait?: boolean; readonly timeout?: number }
  readonly private: boolean
}

/** The payload of `phx_join` as it goes on the wire. */
export interface WireJoinPayload<B = unknown> {
  readonly config: WireJoinConfig<B>
  readonly access_token?: string
}

/** A `system` message's fields, whatever the server sent. */
export interface SystemMessage {
  readonly extension: string
  readonly status: string
  readonly message: string
  readonly channel: string | undefined
}

/** What `isPermanent` reads of a join error: its tag, and the code and reason of a rejection. */
export type JoinErrorLike =
  | { readonly _tag: "JoinRejected"; readonly code: string; readonly reason: string }
  | { readonly _tag: string }

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
export const isPermanent = (error: JoinErrorLike): boolean =>
  (isRejection(error) && permanentCodes.has(error.code) &&
    // the server also answers UnableToReplayMessages when the replay query fails: that one passes
    (error.code !== "UnableToReplayMessages" || /not valid|not allowed/.test(error.reason))) ||
  error._tag === "InvalidArgument" || error._tag === "PostgresBindingMismatch"

const isRejection = (
  error: JoinErrorLike
): error is { readonly _tag: "JoinRejected"; readonly code: string; readonly reason: string } =>
  error._tag === "JoinRejected"

/** A server's refusal of a join, read: what an edition's `JoinRejected` / `TokenExpired` is made of. */
export interface Rejection {
  /** The part of the reason before `": "` (`Unauthorized`, `InvalidJWTToken`, …), or `"Unknown"`. */
  readonly code: string
  /** The whole reason, bounded. */
  readonly reason: string
  /** The token expired (`InvalidJWTToken` saying so): a new token may let the join pass. */
  readonly expired: boolean
}

/**
 * Reads a join's error reply: its `reason` (the response described, bounded, when it has none) split
 * into its code and text. A reason without a code (`"unmatched topic"`) gets the code `"Unknown"`.
 */
export const rejection = (response: unknown): Rejection => {
  // the response comes from the wire: depth-safe and bounded
  const reason = hasReason(response)
    ? Describe.truncate(response.reason)
    : typeof response === "string"
    ? Describe.truncate(response)
    : Describe.describe(response)
  const match = /^([A-Za-z]+): /.exec(reason)
  const code = match ? match[1]! : "Unknown"
  return { code, reason, expired: code === "InvalidJWTToken" && reason.includes("expired") }
}

const hasReason = (u: unknown): u is { readonly reason: string } =>
  (typeof u === "object" && u !== null || typeof u === "function") && "reason" in u && typeof u.reason === "string"

/** A `system` message's fields, whatever the server sent. */
export const decodeSystem = (payload: unknown): SystemMessage | undefined => {
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

/** A stable text of what makes two configs the same channel on the wire. */
export const configKey = (config: ChannelConfig): string => {
  // configs are readonly data, and apps tend to reuse one object for many channels
  let key = configKeys.get(config)
  if (key === undefined) {
    key = JSON.stringify(canonical({ ...config, postgresChanges: config.postgresChanges?.map(Bindings.toWire) }))
    configKeys.set(config, key)
  }
  return key
}
const configKeys = new WeakMap<ChannelConfig, string>()

/** The join payload of a config, as realtime-js sends it (`replaySince`: a rejoin's replay start). */
export const joinPayload = <B>(
  config: ChannelConfig,
  options: {
    readonly wireBindings: ReadonlyArray<B>
    readonly presenceEnabled: boolean
    readonly token: string | undefined
    readonly replaySince: number | undefined
  }
): WireJoinPayload<B> => {
  const replay = config.broadcast?.replay
  const since = options.replaySince ?? replay?.since
  const broadcast: WireJoinConfig["broadcast"] = {
    ack: config.broadcast?.ack ?? false,
    self: config.broadcast?.self ?? false,
    ...(replay === undefined || since === undefined
      ? {}
      : { replay: replay.limit === undefined ? { since } : { since, limit: replay.limit } }),
    ...(config.broadcast?.replicationReady ? { replication_ready: true } : {})
  }
  const pgOptions = config.postgresChangesOptions
  const wire: WireJoinConfig<B> = {
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
  return options.token !== undefined ? { config: wire, access_token: options.token } : { config: wire }
}

/**
 * Why a channel's name or config is refused (the `InvalidArgument` detail), or `undefined`: an empty
 * topic, a blank presence key, replay on a public channel, a Postgres changes binding the server
 * would refuse.
 */
export const checkChannel = (name: string, config: ChannelConfig): string | undefined => {
  if (Topic.isEmpty(name)) return "a channel needs a topic name"
  const presenceKey = config.presence?.key
  if (presenceKey !== undefined && (typeof presenceKey !== "string" || presenceKey.trim() === "")) {
    return `channel '${
      Topic.topicOf(name)
    }': presence.key must not be empty or blank (omit it for a key the server generates)`
  }
  if (config.broadcast?.replay !== undefined && !config.private) {
    return `tried to use replay on public channel '${Topic.topicOf(name)}'. It must be a private channel.`
  }
  for (const binding of config.postgresChanges ?? []) {
    const wire = Bindings.toWireChecked(binding)
    if (!wire.ok) return wire.error
  }
  return undefined
}

/**
 * How long a join waits for its reply, in milliseconds: the channel's timeout, or longer when the
 * server waits for its Postgres changes bindings (`postgresChangesOptions.wait`): their timeout
 * (15 s by default) and 10 s more.
 */
export const joinTimeoutMillis = (config: ChannelConfig, timeoutMillis: number): number => {
  const options = config.postgresChangesOptions
  return options?.wait && (config.postgresChanges?.length ?? 0) > 0
    ? Math.max(timeoutMillis, (options.timeout ?? 15_000) + 10_000)
    : timeoutMillis
}

/**
 * Which of the channel's wire bindings `binding` is (its index), or why a stream cannot listen to it
 * (the `InvalidArgument` detail): bindings are sent with the join, so only declared ones have events.
 */
export const bindingIndex = (
  topic: string,
  wireBindings: ReadonlyArray<Bindings.WireBinding>,
  binding: Bindings.Binding
): Result.Result<number, string> => {
  const wanted = JSON.stringify(canonical(Bindings.toWire(binding)))
  const index = wireBindings.findIndex((b) => JSON.stringify(canonical(b)) === wanted)
  return index >= 0 ? Result.ok(index) : Result.err(
    `${topic}: the binding ${wanted} is not in the channel's config.postgresChanges (${
      JSON.stringify(wireBindings)
    }); bindings are sent with the join, so declare them in the channel config`
  )
}
