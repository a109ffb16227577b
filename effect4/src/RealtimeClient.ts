/**
 * The Realtime client: one socket, its channels, its token. Built from whichever pieces the app
 * provides — a `WebSocketConstructor` (Node, browser, the fake socket), and optionally
 * `AccessToken`, `Heartbeat`, `Reconnect` and `HttpBroadcast` — with realtime-js's defaults for
 * the rest. The Effect 4 edition.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberHandle from "effect/FiberHandle"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import type * as Socket from "effect/socket/Socket"
import * as Stream from "effect/Stream"
import * as AccessToken from "./AccessToken.js"
import * as Heartbeat from "./Heartbeat.js"
import * as HttpBroadcast from "./HttpBroadcast.js"
import * as InternalChannel from "./internal/channel.js"
import type * as PostgresChanges from "./PostgresChanges.js"
import type * as RealtimeChannel from "./RealtimeChannel.js"
import { ChannelClosed, InvalidArgument, SocketClosed } from "./RealtimeError.js"
import * as Reconnect from "./Reconnect.js"
import * as Transport from "./Transport.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("supabase-realtime-effect/RealtimeClient")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * @since 0.1.0
 * @category models
 */
export interface RealtimeClient {
  readonly [TypeId]: TypeId
  /** The connection state. */
  readonly state: Effect.Effect<Transport.ConnectionState>
  /** The connection state, then every change: connecting, open, reconnecting (attempt, delay), closed. */
  readonly stateChanges: Stream.Stream<Transport.ConnectionState>
  /** Heartbeat statuses (sent, ok with latency, error, timeout). */
  readonly heartbeats: Stream.Stream<Heartbeat.HeartbeatStatus>
  /** Opens the socket (subscribing does it too). */
  readonly connect: Effect.Effect<void>
  /**
   * Closes the socket with 1000 and stops reconnecting. Subscribed channels stay subscribed and
   * rejoin on the next `connect`.
   */
  readonly disconnect: Effect.Effect<void>
  /**
   * A channel on topic `realtime:<name>`, held for the scope. The same name with the same config
   * returns the same channel (one join per topic per socket); a different config fails.
   */
  readonly channel: (
    name: string,
    config?: RealtimeChannel.ChannelConfig,
    options?: RealtimeChannel.ChannelOptions
  ) => Effect.Effect<RealtimeChannel.RealtimeChannel, InvalidArgument, Scope.Scope>
  /** The channels currently held. */
  readonly channels: Effect.Effect<ReadonlyArray<RealtimeChannel.RealtimeChannel>>
  /** Leaves and removes a channel now, whatever holds it; its streams end. */
  readonly removeChannel: (channel: RealtimeChannel.RealtimeChannel) => Effect.Effect<void>
  /** Removes every channel and disconnects. */
  readonly removeAllChannels: Effect.Effect<void>
  /** Sets the access token (`null` clears it): pushed to joined channels, used by every later join. */
  readonly setAuth: (token: string | null) => Effect.Effect<void>
  /** The token source. */
  readonly accessToken: AccessToken.AccessToken
}

/**
 * @since 0.1.0
 * @category tags
 */
export const RealtimeClient: Context.Service<RealtimeClient, RealtimeClient> = Context.Service<RealtimeClient>(
  "supabase-realtime-effect/RealtimeClient"
)

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends Transport.Options {
  /**
   * How long the socket stays open after the last channel is gone; default 50 s (twice the
   * heartbeat, as realtime-js), 0 = at once.
   */
  readonly disconnectOnEmptyAfter?: Duration.Input | undefined
  /** How `int8` and `numeric` columns of Postgres changes are decoded; default `"string"` (exact). */
  readonly int8?: PostgresChanges.ConvertOptions["int8"] | undefined
}

/**
 * Builds a client over a transport. `AccessToken` (default: none), `Reconnect` and `HttpBroadcast`
 * are used when provided.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<RealtimeClient, never, Transport.Transport | Scope.Scope> =>
  Effect.gen(function*() {
    const transport = yield* Transport.Transport
    const providedToken = yield* Effect.serviceOption(AccessToken.AccessToken)
    const accessToken = Option.isSome(providedToken) ? providedToken.value : yield* AccessToken.make({})
    const httpBroadcast = yield* Effect.serviceOption(HttpBroadcast.HttpBroadcast)
    const reconnect = Option.getOrElse(yield* Effect.serviceOption(Reconnect.Reconnect), () => Reconnect.defaults)
    const context = yield* Effect.context<never>()
    const clock = yield* Clock.Clock
    const heartbeat = Option.getOrElse(yield* Effect.serviceOption(Heartbeat.Heartbeat), () => Heartbeat.defaults)
    const scope = yield* Effect.scope
    const disconnectAfter = Duration.fromInputUnsafe(options.disconnectOnEmptyAfter ?? "50 seconds")

    interface Entry {
      readonly channel: InternalChannel.ChannelImpl
      readonly unroute: () => void
      handles: number
    }
    const registry = new Map<string, Entry>()
    const idleDisconnect = yield* FiberHandle.make<void, never>()
    // Set while the idle disconnect waits: the first subscribe after it cancels it, alone (a burst
    // of subscribes must not all interrupt the same fiber: each interruption grows its cause).
    let idleScheduled = false
    // channels with at least one subscription
    let activeChannels = 0
    // when the socket was last known alive (opened, or answered a heartbeat)
    let aliveAt = clock.currentTimeMillisUnsafe()
    // once the client's scope closed, late finalizers of channel handles held elsewhere are no-ops
    let closed = false

    // the socket closes (after a grace period) once no channel is subscribed
    const scheduleIdleDisconnect = Effect.suspend(() => {
      if (closed) return Effect.void
      if (activeChannels > 0) return Effect.void
      // built only when it runs: every channel that leaves comes here, and building the traced
      // effect costs a stack trace capture
      if (Duration.toMillis(disconnectAfter) === 0) return transport.disconnect({ reason: "no channels left" })
      if (idleScheduled) return Effect.void
      idleScheduled = true
      const disconnect = transport.disconnect({ reason: "no channels left" })
      const later = Effect.andThen(
        Effect.sync(() => {
          idleScheduled = false
        }),
        disconnect
      )
      return FiberHandle.run(idleDisconnect, Effect.delay(later, disconnectAfter)).pipe(Effect.asVoid)
    })

    const register = (channel: InternalChannel.ChannelImpl) =>
      Effect.suspend(() => {
        if (registry.get(channel.topic)?.channel !== channel) {
          return Effect.fail(new ChannelClosed({ topic: channel.topic, reason: "the channel was removed" }))
        }
        if (!idleScheduled) return transport.connect
        idleScheduled = false
        return Effect.andThen(FiberHandle.clear(idleDisconnect), transport.connect)
      })

    const drop = (entry: Entry, reason: string) =>
      Effect.suspend(() => {
        if (registry.get(entry.channel.topic) === entry) registry.delete(entry.channel.topic)
        entry.handles = 0
        return entry.channel.remove(reason).pipe(Effect.ensuring(Effect.sync(entry.unroute)))
      })

    // channels fork their rejoin and re-track fibers from the client's services (they interrupt them
    // when they leave; the client's finalizer removes every channel). They start at once (a fiber
    // run from outside a fiber starts synchronously in Effect 4), so that a rejoin has its backoff
    // timer set by the time anyone sees the channel's Errored status.
    const runFork = Effect.runForkWith(context)
    const deps: InternalChannel.Deps = {
      transport,
      accessToken,
      httpBroadcast,
      rejoin: reconnect.rejoin,
      timeout: Duration.fromInputUnsafe(options.timeout ?? "10 seconds"),
      int8: options.int8 ?? "string",
      runFork: (effect) => runFork(effect),
      runSync: Effect.runSyncWith(context),
      context,
      now: () => clock.currentTimeMillisUnsafe(),
      stableAfter: heartbeat.interval,
      aliveAt: () => aliveAt,
      register,
      activeChanged: (delta) => {
        activeChannels += delta
      },
      unregister: () => scheduleIdleDisconnect
    }

    const release = (held: Entry) =>
      Effect.suspend(() => {
        if (closed || held.handles === 0) return Effect.void
        held.handles--
        if (held.handles > 0) return Effect.void
        return drop(held, "the channel's scope closed").pipe(Effect.andThen(scheduleIdleDisconnect))
      })

    const channel = (
      name: string,
      config: RealtimeChannel.ChannelConfig = {},
      channelOptions: RealtimeChannel.ChannelOptions = {}
    ): Effect.Effect<RealtimeChannel.RealtimeChannel, InvalidArgument, Scope.Scope> =>
      Effect.suspend(() => {
        const topic = InternalChannel.topicOf(name)
        const key = InternalChannel.configKey(config)
        let entry = registry.get(topic)
        if (entry !== undefined) {
          if (entry.channel.key !== key) {
            return Effect.fail(
              new InvalidArgument({
                detail:
                  `channel '${topic}' already exists with another config (${entry.channel.key}); one join per topic per socket: remove it first or use the same config`
              })
            )
          }
        } else {
          const created = InternalChannel.make(name, config, channelOptions, deps, key)
          if (Result.isFailure(created)) return Effect.fail(created.failure)
          const routed = transport.unsafeRoute(topic, created.success.onMessage)
          if (Result.isFailure(routed)) return Effect.fail(routed.failure)
          entry = { channel: created.success, unroute: routed.success, handles: 0 }
          registry.set(topic, entry)
        }
        const held = entry
        held.handles++
        // released when the caller's scope closes
        return Effect.flatMap(
          Effect.scope,
          (scope) => Effect.as(Scope.addFinalizer(scope, release(held)), held.channel)
        )
      })

    const removeChannel = (target: RealtimeChannel.RealtimeChannel) =>
      Effect.suspend(() => {
        const entry = registry.get(target.topic)
        if (entry === undefined || entry.channel !== target) return Effect.void
        return drop(entry, "removed").pipe(Effect.andThen(scheduleIdleDisconnect))
      })

    const removeAllChannels = Effect.suspend(() =>
      Effect.forEach([...registry.values()], (entry) => drop(entry, "removed"), {
        concurrency: "unbounded",
        discard: true
      }).pipe(
        Effect.andThen(Effect.suspend(() => {
          idleScheduled = false
          return FiberHandle.clear(idleDisconnect)
        })),
        Effect.andThen(transport.disconnect({ reason: "all channels removed" }))
      )
    )

    // Every change of the connection reaches every channel, synchronously and in order: an open
    // socket lets waiting joins go; a closed one (or one that could not open) is a failed attempt
    // for a subscribe that waits, and the loss of the join for a subscribed channel. The failure is
    // built once per change, for all channels.
    const stopListening = transport.unsafeOnState((state) => {
      if (state._tag === "Connecting") return
      if (state._tag === "Open") aliveAt = clock.currentTimeMillisUnsafe()
      const down = state._tag === "Open" ? undefined : InternalChannel.socketFailure(
        state._tag === "Offline" ? new SocketClosed({ reason: state.reason }) : new SocketClosed({
          reason: state.reason,
          code: state.code,
          status: state.status,
          body: state.body
        }),
        // a closed client does not come back by itself (refused for good, gave up, disconnected)
        state._tag === "Closed"
      )
      for (const entry of registry.values()) entry.channel.onSocket(down)
    })
    yield* Effect.addFinalizer(() => Effect.sync(stopListening))

    // a new token goes to every joined channel (only when it changed for that channel), and to a
    // joining one once it joined
    yield* accessToken.changes.pipe(
      Stream.runForEach(() =>
        Effect.sync(() => {
          for (const entry of registry.values()) entry.channel.onTokenChanged()
        })
      ),
      Effect.forkIn(scope)
    )

    // refresh the token on every heartbeat, as realtime-js does (a failure keeps the last token)
    yield* transport.heartbeats.pipe(
      Stream.tap((status) =>
        Effect.sync(() => {
          if (status._tag === "Ok") aliveAt = clock.currentTimeMillisUnsafe()
        })
      ),
      Stream.filter((status) => status._tag === "Sent"),
      Stream.runForEach(() =>
        accessToken.refresh.pipe(
          Effect.catch((error) =>
            Effect.logWarning("access token refresh failed").pipe(Effect.annotateLogs({ error: error.message }))
          )
        )
      ),
      Effect.forkIn(scope)
    )

    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        return Effect.forEach([...registry.values()], (entry) => drop(entry, "client closed"), { discard: true })
      })
    )

    // the cold operations are traced (the per-frame path is not)
    const span = { attributes: { endpoint: transport.endpoint }, kind: "client" as const }
    return RealtimeClient.of({
      [TypeId]: TypeId,
      state: transport.state,
      stateChanges: transport.stateChanges,
      heartbeats: transport.heartbeats,
      connect: Effect.withSpan(transport.connect, "RealtimeClient.connect", span),
      // an idle disconnect armed before must not outlive this one (it would hold the process)
      disconnect: Effect.suspend(() => {
        idleScheduled = false
        return Effect.andThen(FiberHandle.clear(idleDisconnect), transport.disconnect())
      }).pipe(Effect.withSpan("RealtimeClient.disconnect", span)),
      channel,
      channels: Effect.sync(() => [...registry.values()].map((entry) => entry.channel)),
      removeChannel: (target) =>
        removeChannel(target).pipe(
          Effect.withSpan("RealtimeClient.removeChannel", { ...span, attributes: { topic: target.topic } })
        ),
      removeAllChannels: Effect.withSpan(removeAllChannels, "RealtimeClient.removeAllChannels", span),
      setAuth: (token) => Effect.withSpan(accessToken.set(token), "RealtimeClient.setAuth", span),
      accessToken
    })
  }).pipe(Effect.annotateLogs({ module: "RealtimeClient" }))

/**
 * The client and its transport, from a `WebSocketConstructor` (and any of `AccessToken`,
 * `Heartbeat`, `Reconnect`, `HttpBroadcast` the app provides).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<RealtimeClient | Transport.Transport, InvalidArgument, Socket.WebSocketConstructor> =>
  Layer.effect(RealtimeClient, make(options)).pipe(Layer.provideMerge(Transport.layer(options)))

/**
 * Whether a value is a realtime client built by this module.
 *
 * @since 0.1.0
 * @category guards
 */
export const isRealtimeClient = (u: unknown): u is RealtimeClient => Predicate.hasProperty(u, TypeId)
