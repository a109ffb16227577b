/**
 * A channel's presence, typed: the view `channel.presence(schema)` returns, over the channel's raw
 * presence (its synced state, and a stream of its states and diffs). The conversions are the core's
 * (`core/channel/presence.ts`).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as PresenceItems from "../../core/channel/presence.js"
import * as Presence from "../../Presence.js"
import type * as RealtimeChannel from "../../RealtimeChannel.js"
import { InvalidArgument } from "../../RealtimeError.js"
import * as DescribeIssue from "../describe.js"
import { safeDecoder } from "./decode.js"

/** What a view needs from its channel. */
export interface Source {
  /** The state now. */
  readonly state: () => Presence.PresenceState
  /** Every item from now on. */
  readonly items: Stream.Stream<PresenceItems.Item>
  /** The state now, then every item (the first seeded as the stream starts). */
  readonly fromNow: Stream.Stream<PresenceItems.Item>
  /** The channel's `track`. */
  readonly track: RealtimeChannel.RealtimeChannel["track"]
  /** A meta did not match the view's schema (counted). */
  readonly mismatch: () => void
}

/** The view of a channel's presence, metas decoded with `schema` (those that do not match left out). */
export const makeView = (
  source: Source,
  schema: Schema.Schema<any, any> | undefined
): RealtimeChannel.PresenceView<any> => {
  const decoder = schema === undefined ? undefined : safeDecoder(schema)
  const convert = PresenceItems.conversion<Presence.PresenceMeta<any>>(
    decoder === undefined ? undefined : (fields) => {
      const decoded = decoder(fields)
      return Either.isRight(decoded) ? decoded.right : PresenceItems.NoMatch
    },
    Presence.PresenceEvent,
    source.mismatch
  )
  // the current state, then every new one: seeded as the listener registers, so that a state that
  // arrives while the consumer handles the first is not missed
  const states = source.fromNow.pipe(Stream.filter((item): item is Presence.PresenceState => item instanceof Map))
  const encode = schema === undefined ? undefined : Schema.encodeUnknown(schema)
  return {
    occupancy: Effect.sync(() => PresenceItems.occupancyOf(source.state())),
    occupancyChanges: states.pipe(
      Stream.map(PresenceItems.occupancyOf),
      Stream.changesWith(PresenceItems.sameOccupancy)
    ),
    track: (meta, options) =>
      encode === undefined ? source.track(meta, options) : encode(meta).pipe(
        Effect.mapError((error) =>
          new InvalidArgument({
            detail: `track: the presence meta does not match its schema: ${DescribeIssue.describeIssue(error.issue)}`
          })
        ),
        Effect.flatMap((encoded) => source.track(encoded as object, options))
      ),
    state: Effect.sync(() => convert.snapshot(source.state())),
    changes: Stream.map(states, convert.snapshot),
    events: Stream.mapConcat(
      source.items,
      (item): ReadonlyArray<RealtimeChannel.PresenceChange<any>> =>
        item instanceof Map
          ? [{ _tag: "Sync", state: convert.snapshot(item as Presence.PresenceState) }]
          : (item as ReadonlyArray<Presence.PresenceEvent>).map(convert.event) as ReadonlyArray<
            RealtimeChannel.PresenceChange<any>
          >
    )
  }
}
