/**
 * The envelope's `Schema`s: the decoded `Message`, and the text frames of both versions (after
 * `JSON.parse`) transformed to and from it. `Protocol` documents and exports them.
 */
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"

/** `Protocol.Envelope`. */
export const Envelope = Schema.Struct({
  joinRef: Schema.NullOr(Schema.String),
  ref: Schema.NullOr(Schema.String),
  topic: Schema.String,
  event: Schema.String,
  payload: Schema.Unknown
})

/** `Protocol.V2TextFrame`. */
export const V2TextFrame = Schema.TupleWithRest(
  Schema.Tuple([
    Schema.NullOr(Schema.String),
    Schema.NullOr(Schema.String),
    Schema.String,
    Schema.String,
    Schema.Unknown
  ]),
  // elements after the fifth are ignored, as Phoenix's V2 serializer does
  [Schema.Unknown]
).pipe(
  Schema.decodeTo(Envelope, {
    decode: SchemaGetter.transform(([joinRef, ref, topic, event, payload]) => ({
      joinRef,
      ref,
      topic,
      event,
      payload
    })),
    encode: SchemaGetter.transform((message) =>
      [message.joinRef, message.ref, message.topic, message.event, message.payload] as const
    )
  })
)

/** `Protocol.V1TextFrame`. */
export const V1TextFrame = Schema.Struct({
  // a missing `payload` is an issue (a missing key of a non-optional field always is)
  topic: Schema.String,
  event: Schema.String,
  payload: Schema.Unknown,
  ref: Schema.optional(Schema.NullOr(Schema.String)),
  join_ref: Schema.optional(Schema.NullOr(Schema.String))
}).pipe(
  Schema.decodeTo(Envelope, {
    decode: SchemaGetter.transform((frame) => ({
      joinRef: frame.join_ref ?? null,
      ref: frame.ref ?? null,
      topic: frame.topic,
      event: frame.event,
      payload: frame.payload
    })),
    encode: SchemaGetter.transform(({ event, joinRef, payload, ref, topic }) =>
      joinRef === null ? { topic, event, payload, ref } : { topic, event, payload, ref, join_ref: joinRef }
    )
  })
)
