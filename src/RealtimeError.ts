/**
 * Tagged errors of the Realtime client. Every user-facing operation fails with one of these, each
 * carrying what happened in a readable `message` and the structured facts (topic, code, status) to
 * act on with `Effect.catchTag`.
 *
 * @since 0.1.0
 */
import type * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import * as ChannelConfig from "./core/channel/config.js"
import * as Describe from "./core/describe.js"
import * as DescribeIssue from "./internal/describe.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("supabase-realtime-effect/RealtimeError")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * A frame that could not be decoded or a message that could not be encoded.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProtocolError extends Schema.TaggedError<ProtocolError>()("ProtocolError", {
  reason: Schema.Literal(
    "MalformedJson",
    "InvalidEnvelope",
    "UnknownBinaryKind",
    "TruncatedFrame",
    "FieldTooLong",
    "UnsupportedPayload",
    "FrameTooLarge"
  ),
  detail: Schema.String
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `${this.reason}: ${this.detail}`
  }
}

/**
 * The socket closed (or was never open) while an operation needed it.
 *
 * @since 0.1.0
 * @category errors
 */
export class SocketClosed extends Schema.TaggedError<SocketClosed>()("SocketClosed", {
  reason: Schema.String,
  /** The close code, when the socket closed. */
  code: Schema.optional(Schema.Number),
  /** The HTTP status, when the server refused the upgrade. */
  status: Schema.optional(Schema.Number),
  /** The HTTP body of a refused upgrade (the server's own words). */
  body: Schema.optional(Schema.String)
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return this.code === undefined || this.reason.includes(`(${this.code}`)
      ? `socket closed: ${this.reason}`
      : `socket closed (${this.code}): ${this.reason}`
  }
}

/**
 * A push got no reply within its timeout.
 *
 * @since 0.1.0
 * @category errors
 */
export class PushTimeout extends Schema.TaggedError<PushTimeout>()("PushTimeout", {
  topic: Schema.String,
  event: Schema.String,
  timeoutMillis: Schema.Number
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `no reply to '${this.event}' on '${this.topic}' within ${this.timeoutMillis} ms`
  }
}

/**
 * The outbound buffer (pushes made while disconnected) is full.
 *
 * @since 0.1.0
 * @category errors
 */
export class BufferFull extends Schema.TaggedError<BufferFull>()("BufferFull", {
  topic: Schema.String,
  event: Schema.String,
  capacity: Schema.Number
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `send buffer full (${this.capacity} pushes waiting for the socket): '${this.event}' on '${this.topic}' not sent`
  }
}

/**
 * The server answered a push with an error reply.
 *
 * @since 0.1.0
 * @category errors
 */
export class PushRejected extends Schema.TaggedError<PushRejected>()("PushRejected", {
  topic: Schema.String,
  event: Schema.String,
  response: Schema.Unknown
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `'${this.event}' on '${this.topic}' rejected: ${describe(this.response)}`
  }
  /**
   * The fields, with the server's response described (bounded, depth-safe): logging the error
   * never walks what the server sent.
   *
   * @since 0.1.0
   */
  override toJSON(): unknown {
    return { _tag: this._tag, topic: this.topic, event: this.event, response: describe(this.response) }
  }
}

/**
 * The server refused to join a channel. `code` is the part of the server's reason before `": "`
 * (for example `Unauthorized`, `InvalidJWTToken`, `ChannelRateLimitReached`), `reason` the whole text.
 *
 * @since 0.1.0
 * @category errors
 */
export class JoinRejected extends Schema.TaggedError<JoinRejected>()("JoinRejected", {
  topic: Schema.String,
  code: Schema.String,
  reason: Schema.String
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `join '${this.topic}' rejected: ${this.reason}`
  }
}

/**
 * A join got no reply within its timeout.
 *
 * @since 0.1.0
 * @category errors
 */
export class JoinTimeout extends Schema.TaggedError<JoinTimeout>()("JoinTimeout", {
  topic: Schema.String,
  timeoutMillis: Schema.Number
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `join '${this.topic}' got no reply within ${this.timeoutMillis} ms`
  }
}

/**
 * The server closed a channel (after a `system` error such as a rate limit or a revoked permission),
 * or the channel gave up rejoining.
 *
 * @since 0.1.0
 * @category errors
 */
export class ChannelClosed extends Schema.TaggedError<ChannelClosed>()("ChannelClosed", {
  topic: Schema.String,
  reason: Schema.String
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `channel '${this.topic}' closed: ${this.reason}`
  }
}

/**
 * The access token was rejected as expired (join reply or server shutdown of the channel).
 *
 * @since 0.1.0
 * @category errors
 */
export class TokenExpired extends Schema.TaggedError<TokenExpired>()("TokenExpired", {
  topic: Schema.String,
  reason: Schema.String
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `access token expired on '${this.topic}': ${this.reason}`
  }
}

/**
 * The payload is over the server's size limit.
 *
 * @since 0.1.0
 * @category errors
 */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  topic: Schema.String,
  event: Schema.String
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `payload of '${this.event}' on '${this.topic}' exceeds the server's size limit`
  }
}

/**
 * An HTTP broadcast request failed: a non-202 status (with the server's body) or a transport error
 * (`status` absent).
 *
 * @since 0.1.0
 * @category errors
 */
export class HttpBroadcastFailed extends Schema.TaggedError<HttpBroadcastFailed>()("HttpBroadcastFailed", {
  reason: Schema.Literal(
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "Invalid",
    "RateLimited",
    "ServerError",
    "UnexpectedStatus",
    "Transport",
    "Timeout"
  ),
  status: Schema.optional(Schema.Number),
  body: Schema.optional(Schema.Unknown),
  detail: Schema.String
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return this.status === undefined
      ? `HTTP broadcast failed (${this.reason}): ${this.detail}`
      : `HTTP broadcast failed with ${this.status} (${this.reason}): ${this.detail}`
  }
  /**
   * The fields, with the server's body described (bounded, depth-safe): logging the error never
   * walks what the server sent.
   *
   * @since 0.1.0
   */
  override toJSON(): unknown {
    return {
      _tag: this._tag,
      reason: this.reason,
      status: this.status,
      body: this.body === undefined ? undefined : describe(this.body),
      detail: Describe.truncate(this.detail)
    }
  }
}

/**
 * The access token source failed to produce a token.
 *
 * @since 0.1.0
 * @category errors
 */
export class AccessTokenError extends Schema.TaggedError<AccessTokenError>()("AccessTokenError", {
  cause: Schema.Defect
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `access token source failed: ${describe(this.cause)}`
  }
}

/**
 * Invalid input from the caller: a bad URL, option, topic or a conflicting channel config.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidArgument extends Schema.TaggedError<InvalidArgument>()("InvalidArgument", {
  detail: Schema.String
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return this.detail
  }
}

/**
 * The server's ok join reply lists Postgres changes bindings that do not match the ones the channel
 * asked for (compared by event, schema, table, filter and select): a binding without a server id, or
 * a server entry matching no binding.
 *
 * @since 0.1.0
 * @category errors
 */
export class PostgresBindingMismatch extends Schema.TaggedError<PostgresBindingMismatch>()("PostgresBindingMismatch", {
  detail: Schema.String
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  override get message(): string {
    return `mismatch between server and client bindings for postgres changes: ${this.detail}`
  }
}

/**
 * A payload did not match the schema the subscriber gave: what a typed stream with
 * `onDecodeError: "fail"` fails with. `detail` is the parse issue as bounded text; `issue` is the
 * issue itself (see {@link payloadDecodeError}).
 *
 * @since 0.1.0
 * @category errors
 */
export class PayloadDecodeError extends Schema.TaggedError<PayloadDecodeError>()("PayloadDecodeError", {
  topic: Schema.String,
  event: Schema.String,
  detail: Schema.String
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /**
   * The schema's parse issue, when it reported one. Not enumerable: it holds the payload, which
   * the sender may have nested at will, so printing or logging the error never walks it.
   *
   * @since 0.1.0
   */
  declare readonly issue: ParseResult.ParseIssue | undefined
  /** @since 0.1.0 */
  override get message(): string {
    return `payload of '${this.event}' on '${this.topic}' does not match its schema: ${this.detail}`
  }
}

/**
 * A {@link PayloadDecodeError} for a parse issue (or the text of why decoding failed): `detail` is
 * the issue described without recursion and bounded in length, `issue` the issue itself.
 *
 * @since 0.1.0
 * @category constructors
 */
export const payloadDecodeError = (
  topic: string,
  event: string,
  issue: ParseResult.ParseIssue | string
): PayloadDecodeError => {
  const error = new PayloadDecodeError({
    topic,
    event: Describe.truncate(event, 200),
    detail: typeof issue === "string" ? Describe.truncate(issue) : DescribeIssue.describeIssue(issue)
  })
  Object.defineProperty(error, "issue", {
    value: typeof issue === "string" ? undefined : issue,
    enumerable: false
  })
  return error
}

/**
 * Any error of this package.
 *
 * @since 0.1.0
 * @category models
 */
export type RealtimeError =
  | ProtocolError
  | SocketClosed
  | PushTimeout
  | BufferFull
  | PushRejected
  | JoinRejected
  | JoinTimeout
  | ChannelClosed
  | TokenExpired
  | PayloadTooLarge
  | HttpBroadcastFailed
  | AccessTokenError
  | InvalidArgument
  | PostgresBindingMismatch
  | PayloadDecodeError

/**
 * @since 0.1.0
 * @category guards
 */
export const isRealtimeError = (u: unknown): u is RealtimeError => Predicate.hasProperty(u, TypeId)

/**
 * Splits a server join reason `"Code: message"` into its code and text. A reason without a code
 * (`"unmatched topic"`) gets the code `"Unknown"`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const joinRejected = (topic: string, response: unknown): JoinRejected | TokenExpired => {
  const { code, expired, reason } = ChannelConfig.rejection(response)
  return expired ? new TokenExpired({ topic, reason }) : new JoinRejected({ topic, code, reason })
}

// depth-safe and bounded: a reply's response comes from the wire
const describe = (u: unknown): string => typeof u === "string" ? Describe.truncate(u) : Describe.describe(u)
