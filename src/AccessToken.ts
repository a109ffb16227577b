/**
 * The access token source: where the client gets the JWT it sends on joins, rejoins and
 * `access_token` pushes. A static token, none (the apikey authorizes), or an Effect that fetches a
 * fresh token from the user's auth. Concurrent refreshes share one fetch, and a token set by hand
 * while a fetch is in flight wins over that fetch's result (no stale-token races).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { AccessTokenError } from "./RealtimeError.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("supabase-realtime-effect/AccessToken")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * @since 0.1.0
 * @category models
 */
export interface AccessToken {
  readonly [TypeId]: TypeId
  /**
   * Resolves the token to use now. With a dynamic source this runs the source (one fetch shared by
   * concurrent callers) and stores the result; otherwise it returns the current token.
   */
  readonly refresh: Effect.Effect<Option.Option<string>, AccessTokenError>
  /** The last known token, without running the source. */
  readonly current: Effect.Effect<Option.Option<string>>
  /**
   * Sets the token by hand (`null` clears it: joins then carry no token and the apikey authorizes).
   * With a dynamic source the next refresh replaces it.
   */
  readonly set: (token: string | null) => Effect.Effect<void>
  /** The current token, then every change. */
  readonly changes: Stream.Stream<Option.Option<string>>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const AccessToken: Context.Tag<AccessToken, AccessToken> = Context.GenericTag<AccessToken>(
  "supabase-realtime-effect/AccessToken"
)

const sameToken = Option.getEquivalence<string>((a, b) => a === b)

const defaultTimeout = Duration.seconds(10)

/**
 * Builds a token source. Without `fetch` the source is manual: `refresh` returns the token last set.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E = never, R = never>(options: {
  readonly initial?: string | null | undefined
  readonly fetch?: Effect.Effect<string | null, E, R> | undefined
  /**
   * How long a fetch may take (default 10 seconds): one that takes longer is interrupted and fails
   * with `AccessTokenError`, and the next `refresh` calls the source again.
   */
  readonly timeout?: Duration.DurationInput | undefined
}): Effect.Effect<AccessToken, never, R> => makeIn(options, undefined)

/**
 * `make`, with the scope the source lives in (a layer's): a fetch in flight when it closes is
 * interrupted. Without one, a fetch outlives its caller at most its timeout.
 */
const makeIn = <E, R>(
  options: Parameters<typeof make<E, R>>[0],
  scope: Scope.Scope | undefined
): Effect.Effect<AccessToken, never, R> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<R>()
    const ref = yield* SubscriptionRef.make(Option.fromNullable(options.initial ?? null))
    // bumped by every `set`: a fetch started before a manual set must not overwrite it
    let generation = 0
    let inflight: Deferred.Deferred<Option.Option<string>, AccessTokenError> | undefined
    const timeout = Duration.decode(options.timeout ?? defaultTimeout)
    // the fetch in flight, interrupted when the source's scope closes
    let fetching: Fiber.RuntimeFiber<unknown, unknown> | undefined
    if (scope !== undefined) {
      yield* Scope.addFinalizer(scope, Effect.suspend(() => fetching ? Fiber.interrupt(fetching) : Effect.void))
    }

    // subscribers see changes only: storing the same token again publishes nothing (`update` would
    // publish it, even unchanged)
    const store = (token: Option.Option<string>): Effect.Effect<void> =>
      Effect.flatMap(
        SubscriptionRef.get(ref),
        (old) => sameToken(old, token) ? Effect.void : SubscriptionRef.set(ref, token)
      )

    const fetchOnce = (fetch: Effect.Effect<string | null, E, R>) =>
      Effect.suspend(() => {
        if (inflight) return Deferred.await(inflight)
        const deferred = Deferred.unsafeMake<Option.Option<string>, AccessTokenError>(FiberId.none)
        inflight = deferred
        const started = generation
        return fetch.pipe(
          Effect.provide(context),
          Effect.mapError((cause) => new AccessTokenError({ cause })),
          Effect.catchAllDefect((cause) => Effect.fail(new AccessTokenError({ cause }))),
          // a source that never answers is a failed one: the next refresh asks it again
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () => new AccessTokenError({ cause: `no token within ${Duration.format(timeout)}` })
          }),
          Effect.flatMap((token) =>
            started === generation
              ? store(Option.fromNullable(token)).pipe(Effect.as(Option.fromNullable(token)))
              : SubscriptionRef.get(ref)
          ),
          Effect.onExit((exit) =>
            Effect.sync(() => {
              inflight = undefined
              fetching = undefined
              Deferred.unsafeDone(deferred, Exit.isSuccess(exit) ? exit : Exit.failCause(exit.cause))
            })
          ),
          // in a fiber of its own: a source that never answers must not hold the caller, who may give
          // up (interrupt), nor be cancelled by it for the others. Interruptible whoever asked (a fork
          // inherits its parent's interruptibility): else its timeout could not cut it
          Effect.interruptible,
          Effect.forkDaemon,
          Effect.flatMap((fiber) => {
            if (inflight === deferred) fetching = fiber
            return Deferred.await(deferred)
          })
        )
      })

    const fetch = options.fetch
    // one effect for both when nothing is fetched: a caller can tell that `refresh` answers at once
    const current = SubscriptionRef.get(ref)
    return AccessToken.of({
      [TypeId]: TypeId,
      refresh: fetch ? fetchOnce(fetch) : current,
      current,
      set: (token) =>
        Effect.suspend(() => {
          generation++
          return store(Option.fromNullable(token))
        }),
      changes: ref.changes
    })
  })

/**
 * No token: joins carry no `access_token` and the server authorizes with the apikey, until a
 * token is set with `set` (realtime-js's `setAuth`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerNone: Layer.Layer<AccessToken> = Layer.effect(AccessToken, make({}))

/**
 * A fixed token (it can still be replaced with `set`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStatic = (token: string): Layer.Layer<AccessToken> =>
  Layer.effect(AccessToken, make({ initial: token }))

/**
 * A token fetched by an Effect (the app's auth session): run before the first join, before every
 * reconnect and rejoin, and on every heartbeat. A failure is reported as `AccessTokenError` and the
 * last good token is kept; a join waits for the fetch at most its join timeout, then goes on with
 * that token. A fetch that takes longer than `timeout` (default 10 seconds) fails, and the next
 * refresh calls the source again; one in flight when the layer's scope closes is interrupted.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerEffect = <E, R>(
  fetch: Effect.Effect<string | null, E, R>,
  options?: { readonly timeout?: Duration.DurationInput | undefined }
): Layer.Layer<AccessToken, never, R> =>
  // a fetch in flight does not outlive the layer
  Layer.scoped(
    AccessToken,
    Effect.flatMap(Effect.scope, (scope) => makeIn({ fetch, timeout: options?.timeout }, scope))
  )

/**
 * The token source a simple option describes: `undefined` (none), a static token, or an Effect that
 * fetches one.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFrom = (source: string | Effect.Effect<string | null> | undefined): Layer.Layer<AccessToken> =>
  source === undefined ? layerNone : typeof source === "string" ? layerStatic(source) : layerEffect(source)

/**
 * Whether a value is the access token source built by this module.
 *
 * @since 0.1.0
 * @category guards
 */
export const isAccessToken = (u: unknown): u is AccessToken => Predicate.hasProperty(u, TypeId)
