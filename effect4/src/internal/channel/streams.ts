/**
 * A channel's streams, in the Effect 4 edition: status, gaps, broadcasts, `system`, Postgres changes
 * and presence. Each connects a queue of its own to the channel's listeners when it starts (and
 * disconnects it when it ends); the channel fills the queues synchronously from the read loop.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type * as SchemaIssue from "effect/SchemaIssue"
import * as Stream from "effect/Stream"
import * as Config from "../../../../src/core/channel/config.js"
import type * as PresenceItems from "../../../../src/core/channel/presence.js"
import * as PostgresChanges from "../../PostgresChanges.js"
import * as RealtimeChannel from "../../RealtimeChannel.js"
import { InvalidArgument, payloadDecodeError } from "../../RealtimeError.js"
import type { ChannelImpl } from "../channel.js"
import { BatchedFeed, inboxStream } from "../inbox.js"
import { decodeStream, partialOf, safeDecoder, Skipped } from "./decode.js"
import * as PresenceView from "./presence.js"

const metrics = RealtimeChannel.metrics

/** The current status, then every change; ends after `Closed` once the channel is removed. */
export const statusChanges = (self: ChannelImpl): Stream.Stream<RealtimeChannel.ChannelStatus> =>
  inboxStream<RealtimeChannel.ChannelStatus>(Number.POSITIVE_INFINITY, (inbox) => self.listenStatus(inbox))

/** One `Gap` per rejoin; ends once the channel is removed. */
export const gaps = (self: ChannelImpl): Stream.Stream<RealtimeChannel.Gap> =>
  inboxStream<RealtimeChannel.Gap>(Number.POSITIVE_INFINITY, (inbox) => self.listenGaps(inbox))

/** A stream of what `add` connects a feed to (for as long as the stream runs). */
const listen = <A>(self: ChannelImpl, add: (feed: BatchedFeed<A>) => () => void): Stream.Stream<A> =>
  inboxStream<A>(self.bufferSize, (inbox) => {
    if (self.removed) {
      inbox.end()
      return () => {}
    }
    return add(new BatchedFeed(inbox, self.onDropped))
  })

/** A payload that does not match: counted; logged when skipped. The issue is described bounded. */
const mismatch = (self: ChannelImpl, event: string, issue: SchemaIssue.Issue | string): Skipped => {
  metrics.decodeFailures.updateUnsafe(1, self.deps.context)
  const error = payloadDecodeError(self.topic, event, issue)
  return new Skipped(
    Effect.logWarning("payload does not match the schema: skipped").pipe(
      Effect.annotateLogs({ topic: self.topic, event: error.event, error: error.detail })
    ),
    error
  )
}

/** The channel's `broadcast` (its overloads are `RealtimeChannel`'s). */
export const broadcast = (
  self: ChannelImpl,
  eventOrDefinition: string | RealtimeChannel.BroadcastEvent<any, any>,
  schemaOrOptions?: Schema.Codec<any, any> | RealtimeChannel.DecodeOptions,
  maybeOptions?: RealtimeChannel.DecodeOptions
): Stream.Stream<RealtimeChannel.Broadcast<unknown>, any> => {
  const named = typeof eventOrDefinition === "string"
  const event = named ? eventOrDefinition : eventOrDefinition.event
  const schema = named ? schemaOrOptions as Schema.Codec<any, any> | undefined : eventOrDefinition.schema
  const options = named ? maybeOptions : schemaOrOptions as RealtimeChannel.DecodeOptions | undefined
  const key = event === "*" ? "*" : event.toLowerCase()
  const stream = listen<RealtimeChannel.Broadcast<unknown>>(self, (feed) => self.listenBroadcast(key, feed))
  // the inbox already holds `Broadcast`s: no per-element work without a schema
  if (schema === undefined) return stream
  const decode = safeDecoder(schema)
  return decodeStream(stream, options, (b): RealtimeChannel.Broadcast<unknown> | Skipped => {
    const decoded = decode(b.payload)
    return Result.isSuccess(decoded)
      ? { event: b.event, payload: decoded.success, meta: b.meta }
      : mismatch(self, b.event, decoded.failure)
  }, self.deps.runFork)
}

/** The channel's `system` messages. */
export const system = (self: ChannelImpl): Stream.Stream<RealtimeChannel.SystemMessage> =>
  listen<RealtimeChannel.SystemMessage>(self, (feed) => self.listenSystem(feed))

/** The channel's `postgresChanges` (its overloads are `RealtimeChannel`'s). */
export const postgresChanges = (
  self: ChannelImpl,
  binding?: PostgresChanges.Binding,
  schemaOrOptions?: Schema.Codec<any, any> | RealtimeChannel.DecodeOptions,
  decodeOptions?: RealtimeChannel.DecodeOptions
): Stream.Stream<PostgresChanges.Change<any>, any> => {
  const schema = Schema.isSchema(schemaOrOptions) ? schemaOrOptions as Schema.Codec<any, any> : undefined
  const options = Schema.isSchema(schemaOrOptions) ? decodeOptions : schemaOrOptions
  // a binding typed by generated types: int8 and numeric as the numbers the types promise, exactly
  const generated = schema === undefined && PostgresChanges.isTypedBinding(binding)
  let index = -1
  if (binding !== undefined) {
    const found = Config.bindingIndex(self.topic, self.wireBindings, binding)
    if (!found.ok) return Stream.fail(new InvalidArgument({ detail: found.error }))
    index = found.value
  }
  const decodeRow = schema === undefined ? undefined : safeDecoder(schema)
  const decodeOld = schema === undefined ? undefined : safeDecoder(partialOf(schema))
  const int8 = self.deps.int8
  const stream = listen<unknown>(self, (feed) => self.listenPostgres(index, feed))
  return decodeStream(stream, options, (payload): PostgresChanges.Change<any> | Skipped => {
    const data = (payload as { readonly data: unknown }).data
    const change = PostgresChanges.convertChange(data, generated ? undefined : { int8 })
    if (Result.isFailure(change)) {
      return new Skipped(
        Effect.logWarning("malformed postgres_changes payload: skipped").pipe(
          Effect.annotateLogs({ topic: self.topic, error: change.failure.message })
        )
      )
    }
    if (generated) {
      const typed = PostgresChanges.toGeneratedTypes(data, change.success)
      return Result.isSuccess(typed)
        ? typed.success
        : mismatch(self, `postgres_changes ${change.success.table}`, typed.failure)
    }
    if (decodeRow === undefined) return change.success
    const c = change.success
    const row = c.eventType === "DELETE" ? Result.succeed({}) : decodeRow(c.new)
    if (Result.isFailure(row)) return mismatch(self, `postgres_changes ${c.table}`, row.failure)
    const old = c.eventType === "INSERT" ? Result.succeed({}) : decodeOld!(c.old)
    if (Result.isFailure(old)) return mismatch(self, `postgres_changes ${c.table}`, old.failure)
    return { ...c, new: row.success, old: old.success } as PostgresChanges.Change<any>
  }, self.deps.runFork)
}

/** The channel's `presence(schema)` view. */
export const presence = (
  self: ChannelImpl,
  schema: Schema.Codec<any, any> | undefined
): RealtimeChannel.PresenceView<any> => {
  self.wantPresence()
  return PresenceView.makeView(presenceSource(self), schema)
}

/** What the presence views read of the channel (built once, on the first view). */
const presenceSource = (self: ChannelImpl): PresenceView.Source =>
  self.presenceSourceCache ??= {
    state: () => self.syncer.state,
    items: listen<PresenceItems.Item>(self, (feed) => self.listenPresence(feed)),
    fromNow: listen<PresenceItems.Item>(self, (feed) => {
      feed.inbox.offer(self.syncer.state, true)
      return self.listenPresence(feed)
    }),
    track: (meta, options) => self.track(meta, options),
    mismatch: () => metrics.decodeFailures.updateUnsafe(1, self.deps.context)
  }
