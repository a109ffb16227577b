/**
 * Waiting on channel statuses in tests.
 */
import { Effect, Option, Stream } from "effect"
import type * as RealtimeChannel from "../../src/RealtimeChannel.js"

/** The first status with `tag` (the current one included). */
export const awaitStatus = (channel: RealtimeChannel.RealtimeChannel, tag: RealtimeChannel.ChannelStatus["_tag"]) =>
  channel.statusChanges.pipe(Stream.filter((s) => s._tag === tag), Stream.runHead, Effect.map(Option.getOrThrow))

/**
 * Watches a channel's statuses from now until one with `tag` (forked; started before it returns).
 * A lost join shows `Errored` and, at once, `Rejoining` (with its backoff timer set), so tests wait
 * for `Rejoining` before moving the clock.
 */
export const statusesUntil = (
  channel: RealtimeChannel.RealtimeChannel,
  tag: RealtimeChannel.ChannelStatus["_tag"]
) =>
  channel.statusChanges.pipe(
    Stream.takeUntil((s) => s._tag === tag),
    Stream.runCollect,
    Effect.map((statuses): ReadonlyArray<RealtimeChannel.ChannelStatus> => statuses),
    Effect.forkChild({ startImmediately: true }),
    Effect.tap(() => Effect.yieldNow)
  )
