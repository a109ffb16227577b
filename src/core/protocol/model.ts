/**
 * The wire model in plain TypeScript: the serializer version, a frame, the decoded Phoenix envelope,
 * the codecs' error data and the serializer interfaces over `Result`. Each edition re-exports these
 * types (and documents them with its own `Schema`s).
 */
import type * as Result from "../result.js"

/** The serializer version, sent as the `vsn` query parameter. */
export type Vsn = "1.0.0" | "2.0.0"

/** A WebSocket frame: text or binary (an `ArrayBuffer` is normalised to a `Uint8Array` by the transport). */
export type Frame = string | Uint8Array

/** The Phoenix envelope, decoded. Wire slots are `[join_ref, ref, topic, event, payload]`. */
export interface Message {
  readonly joinRef: string | null
  readonly ref: string | null
  readonly topic: string
  readonly event: string
  readonly payload: unknown
}

/** Why a frame could not be decoded or a message encoded. */
export type ProtocolIssueReason =
  | "MalformedJson"
  | "InvalidEnvelope"
  | "UnknownBinaryKind"
  | "TruncatedFrame"
  | "FieldTooLong"
  | "UnsupportedPayload"
  | "FrameTooLarge"

/**
 * A codec failure as plain data (an edition wraps it into its own error type). A class only so that
 * the codecs can tell it apart from a decoded value with `instanceof`.
 */
export class ProtocolIssue {
  constructor(
    /** What kind of failure it is. */
    readonly reason: ProtocolIssueReason,
    /** What exactly is wrong, in words. */
    readonly detail: string
  ) {}

  /** `reason: detail`, as the edition's error prints it. */
  get message(): string {
    return `${this.reason}: ${this.detail}`
  }
}

/** The options of a vsn 2.0.0 client serializer: the payload keys sent as binary broadcast metadata. */
export interface V2Options {
  readonly metadataKeys?: ReadonlyArray<string> | undefined
}

/**
 * The shape every serializer has, whatever its results are: the core's return a `Result` with a
 * `ProtocolIssue`, each edition's its own result type with its own error.
 */
export interface SerializerOf<Encoded, Decoded> {
  readonly vsn: Vsn
  readonly encode: (message: Message) => Encoded
  readonly decode: (frame: Frame) => Decoded
}

/** The client side of the wire: encodes what a client sends, decodes what a server sends. */
export interface Serializer
  extends SerializerOf<Result.Result<Frame, ProtocolIssue>, Result.Result<Message, ProtocolIssue>>
{}

/**
 * The server side of the wire: decodes what a client sends, encodes what a server sends (the same
 * shape as a client's, the other direction).
 */
export interface ServerSerializer extends Serializer {}
