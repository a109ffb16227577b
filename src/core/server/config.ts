/**
 * The test server's options, as a user gives them (with durations of the edition's `Duration`
 * type), and the configuration the engine runs on, resolved from them with their defaults.
 */
import type * as Model from "../protocol/model.js"
import * as Keys from "./keys.js"
import type * as RS from "./model.js"

/**
 * Limits, with the real server's defaults. `D`: the edition's duration input.
 */
export interface Limits<D> {
  /** Open sockets; past it: connect 429 `Too many connected users`. Default 200. */
  readonly maxConcurrentUsers: number
  /** Channels per socket; past it: join `ChannelRateLimitReached: Too many channels`. Default 100. */
  readonly maxChannelsPerClient: number
  /** Joins per second (server-wide); past it: `ClientJoinRateLimitReached` + socket close 1001. Default 100. */
  readonly maxJoinsPerSecond: number
  /** Client events and HTTP broadcasts per second; past it: `Too many messages per second` + close, HTTP 429. Default 100. */
  readonly maxEventsPerSecond: number
  /** Presence calls per second (server-wide); past it: `Too many presence messages per second`. Default 1000. */
  readonly maxPresenceEventsPerSecond: number
  /** Presence calls per channel within `clientPresenceWindow`; past it: `Client presence rate limit exceeded`. Default 5. */
  readonly clientPresenceMaxCalls: number
  /** Default 30 seconds. */
  readonly clientPresenceWindow: D
  /** Broadcast / track payload size in bytes; past it: `payload_size_exceeded`, HTTP 422, `Track message size exceeded`. Default 3 000 500. */
  readonly maxPayloadBytes: number
}

/** The real server's limits, with the presence window the edition gives (30 seconds). */
export const defaultLimits = <D>(clientPresenceWindow: D): Limits<D> => ({
  maxConcurrentUsers: 200,
  maxChannelsPerClient: 100,
  maxJoinsPerSecond: 100,
  maxEventsPerSecond: 100,
  maxPresenceEventsPerSecond: 1000,
  clientPresenceMaxCalls: 5,
  clientPresenceWindow,
  maxPayloadBytes: 3_000_500
})

/** The limits the engine enforces: the `Limits` with the presence window in milliseconds. */
export interface EngineLimits extends Omit<Limits<never>, "clientPresenceWindow"> {
  readonly clientPresenceWindowMillis: number
}

/** Every permission granted. */
export const allPermissions: RS.Permissions = {
  broadcastRead: true,
  broadcastWrite: true,
  presenceRead: true,
  presenceWrite: true
}

/** Every permission denied (what a policy that throws gives). */
export const noPermissions: RS.Permissions = {
  broadcastRead: false,
  broadcastWrite: false,
  presenceRead: false,
  presenceWrite: false
}

/**
 * The default policy: every permission granted. (A real project without policies on
 * `realtime.messages` denies private channels; pass a policy to test that.)
 */
export const allowAll: RS.Policy = () => ({
  broadcastRead: true,
  broadcastWrite: true,
  presenceRead: true,
  presenceWrite: true
})

/**
 * Server options. Everything has a default suited to tests. `D`: the edition's duration input.
 */
export interface Options<D> {
  /** HS256/384/512 secret tokens are verified with. Default {@link Keys.defaultJwtSecret}. */
  readonly jwtSecret?: string | undefined
  /** The anon key handed out as `server.apiKey`. Default: an anon JWT signed with `jwtSecret`, expiring in 2100. */
  readonly apiKey?: string | undefined
  /**
   * Opaque `sb_…` keys the server accepts (as the API gateway does), with the role each stands for.
   * Default `{ sb_publishable_test: "anon", sb_secret_test: "service_role" }`. Other `sb_` keys are not
   * JWTs: `The token provided is not a valid JWT`.
   */
  readonly opaqueKeys?: Readonly<Record<string, string>> | undefined
  /** The serializer when the URL has no `vsn`. Default `"1.0.0"`, as Phoenix. */
  readonly vsnDefault?: Model.Vsn | undefined
  /** Delay of join error replies. Default 0 (the real server: 5 seconds). */
  readonly joinErrorDelay?: D | undefined
  /** Delay of handshake errors on the real listener. Default 0 (the real server: 2 seconds). */
  readonly connectErrorDelay?: D | undefined
  /** A socket that sent nothing for this long is closed (1000). Default 60 seconds, as Phoenix; `false` disables. */
  readonly idleTimeout?: D | false | undefined
  /** Longest interval of the channel token re-check (it also fires at the token's `exp`). Default 5 minutes. */
  readonly tokenCheckInterval?: D | undefined
  /** Limits; unspecified ones keep `defaultLimits`. */
  readonly limits?: Partial<Limits<D>> | undefined
  /** Private-channel policy. Default {@link allowAll}. */
  readonly policy?: RS.Policy | undefined
  /** The tenant's `private_only` flag: public joins fail with `PrivateOnly`. Default false. */
  readonly privateOnly?: boolean | undefined
  /** The tenant's `presence_enabled` flag: every channel gets `presence_state`. Default false. */
  readonly presenceEnabled?: boolean | undefined
  /** Payload of `phx_error` when a channel crashes. Default `{ reason: "channel_crash" }` (Phoenix ≥ 1.8.10). */
  readonly crashPayload?: Readonly<Record<string, unknown>> | undefined
  /** Frames kept per connection for `received` / `sent` (older ones are dropped). Default 10 000. */
  readonly maxRecordedFrames?: number | undefined
  /** The in-memory endpoint `url` reports. Default `"ws://realtime.test/socket"`. */
  readonly memoryUrl?: string | undefined
}

/**
 * Options of the real listener.
 */
export interface ListenOptions<D> extends Options<D> {
  /** Default 0 (any free port). */
  readonly port?: number | undefined
  /** Default `"127.0.0.1"`. */
  readonly host?: string | undefined
}

/** The configuration the engine runs on: the options resolved, durations in milliseconds. */
export interface Config {
  readonly jwtSecret: string
  readonly apiKey: string
  readonly opaqueKeys: Readonly<Record<string, string>>
  readonly vsnDefault: Model.Vsn
  readonly joinErrorDelayMillis: number
  readonly connectErrorDelayMillis: number
  readonly idleTimeoutMillis: number | undefined
  readonly tokenCheckMillis: number
  readonly limits: EngineLimits
  readonly policy: RS.Policy
  readonly privateOnly: boolean
  readonly presenceEnabled: boolean
  readonly crashPayload: Readonly<Record<string, unknown>>
  readonly maxRecordedFrames: number
}

/** The configuration of options: `defaultLimits` for the limits not given, durations by `toMillis`. */
export const resolve = <D>(
  options: Options<D>,
  defaultLimits: Limits<D>,
  toMillis: (duration: D) => number
): Config => {
  const millis = (d: D | undefined, fallback: number): number => d === undefined ? fallback : toMillis(d)
  const jwtSecret = options.jwtSecret ?? Keys.defaultJwtSecret
  const limits = { ...defaultLimits, ...options.limits }
  return {
    jwtSecret,
    apiKey: options.apiKey ?? Keys.anonKey(jwtSecret),
    opaqueKeys: options.opaqueKeys ?? { sb_publishable_test: "anon", sb_secret_test: "service_role" },
    vsnDefault: options.vsnDefault ?? "1.0.0",
    joinErrorDelayMillis: millis(options.joinErrorDelay, 0),
    connectErrorDelayMillis: millis(options.connectErrorDelay, 0),
    idleTimeoutMillis: options.idleTimeout === false ? undefined : millis(options.idleTimeout, 60_000),
    tokenCheckMillis: millis(options.tokenCheckInterval, 5 * 60_000),
    limits: { ...limits, clientPresenceWindowMillis: millis(limits.clientPresenceWindow, 30_000) },
    policy: options.policy ?? allowAll,
    privateOnly: options.privateOnly ?? false,
    presenceEnabled: options.presenceEnabled ?? false,
    crashPayload: options.crashPayload ?? { reason: "channel_crash" },
    maxRecordedFrames: options.maxRecordedFrames ?? 10_000
  }
}
