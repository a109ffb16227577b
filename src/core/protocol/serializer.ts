/**
 * The serializers of both versions, client and server side, over the text and binary codecs.
 */
import * as Binary from "./binary.js"
import * as Bytes from "./bytes.js"
import type * as Model from "./model.js"
import * as Text from "./text.js"

/**
 * The vsn 1.0.0 client serializer: JSON object text frames (`join_ref` omitted when `null`). Binary
 * frames and binary payloads are an `UnsupportedPayload` / `InvalidEnvelope` issue.
 */
export const makeV1 = (): Model.Serializer => ({
  vsn: "1.0.0",
  encode: (message) => Text.encodeV1Text(message, true),
  decode: Text.decodeV1
})

/**
 * The vsn 2.0.0 client serializer. A `broadcast` whose payload has a string `event` is sent as a
 * binary user broadcast push (kind 3) carrying the `metadataKeys` of the payload (default
 * `["persist"]`); a `Uint8Array` payload as a Phoenix binary push (kind 0); everything else as a JSON
 * array text frame. Decodes text frames and binary kinds 0, 1, 2 and 4.
 */
export const makeV2 = (options?: Model.V2Options): Model.Serializer => ({
  vsn: "2.0.0",
  encode: Binary.makeEncodeV2(options?.metadataKeys ?? ["persist"]),
  decode: Binary.decodeV2
})

/** The default vsn 1.0.0 client serializer. */
export const v1: Model.Serializer = makeV1()

/** The default vsn 2.0.0 client serializer. */
export const v2: Model.Serializer = makeV2()

/** The default client serializer of a version. */
export const serializer = (vsn: Model.Vsn): Model.Serializer => vsn === "1.0.0" ? v1 : v2

/**
 * The vsn 1.0.0 server serializer: decodes client objects, encodes `{topic, event, payload, ref}`
 * (servers never send `join_ref` on vsn 1.0.0).
 */
export const serverV1: Model.ServerSerializer = {
  vsn: "1.0.0",
  decode: Text.decodeV1,
  encode: (message) => Text.encodeV1Text(message, false)
}

/**
 * The vsn 2.0.0 server serializer: decodes text frames and binary kinds 0 (client layout, with ref)
 * and 3; encodes text frames, and binary kinds 0, 1, 2, 4 for binary payloads.
 */
export const serverV2: Model.ServerSerializer = {
  vsn: "2.0.0",
  decode: (frame) =>
    typeof frame === "string"
      ? Text.decodeV2Text(frame)
      : frame instanceof Uint8Array
      ? Binary.decodeServerV2Binary(frame)
      : Bytes.fail("InvalidEnvelope", "a frame must be a string or a Uint8Array"),
  encode: Binary.encodeServerV2
}

/** The server serializer of a version. */
export const server = (vsn: Model.Vsn): Model.ServerSerializer => vsn === "1.0.0" ? serverV1 : serverV2
