/**
 * What a channel writes besides its join and leave: the frames of a broadcast, a presence push and
 * a token change, and how a broadcast goes over HTTP while the channel is not joined.
 */
import { isJsonObject } from "../guards.js"
import type * as Model from "../protocol/model.js"
import * as Topic from "../topic.js"
import type * as Config from "./config.js"

/** The `persist` option of a broadcast (vsn 2.0.0). */
export type Persist = boolean | { readonly ttl: number } | undefined

/** A frame of the channel `topic` on the join `joinRef` (`ref`: a fresh socket-wide ref). */
export const message = (
  topic: string,
  joinRef: string,
  ref: string,
  event: string,
  payload: unknown
): Model.Message => ({ joinRef, ref, topic, event, payload })

/** The payload of a `broadcast` frame (`persist` only when given). */
export const broadcastPayload = (event: string, payload: unknown, persist: Persist): Record<string, unknown> =>
  persist === undefined ? { type: "broadcast", event, payload } : { type: "broadcast", event, payload, persist }

/** The payload of an `access_token` frame (`null`: the token was cleared). */
export const accessTokenPayload = (token: string | undefined): { readonly access_token: string | null } => ({
  access_token: token ?? null
})

/** A presence meta `track` accepts: an object, not an array. */
export const isPresenceMeta = (meta: unknown): meta is object =>
  typeof meta === "object" && meta !== null && !Array.isArray(meta)

/** How a broadcast goes over HTTP: to the channel's sub-topic, with its privacy, one endpoint or the other. */
export interface HttpRoute {
  readonly topic: string
  readonly private: boolean
  /**
   * The batch endpoint, as realtime-js: every server version has it (the single-event one only from
   * v2.97.0); bytes and `persist` need the single-event one.
   */
  readonly batch: boolean
}

/** How the broadcast of `payload` goes over HTTP from the channel `name`. */
export const httpRoute = (
  name: string,
  config: Config.ChannelConfig,
  payload: unknown,
  persist: Persist
): HttpRoute => ({
  topic: Topic.subTopicOf(name),
  private: config.private ?? false,
  batch: persist === undefined && isJsonObject(payload)
})
