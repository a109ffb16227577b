/**
 * The test server's engine in an Effect 4 program: its configuration from the `Options`, and its
 * environment from the running fiber's (the `Clock` in context, so `TestClock` drives its timers;
 * timers as fibers of a `FiberSet`, interrupted when the server's scope closes; logs through
 * Effect's logger; server events to a `PubSub`).
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import type * as LogLevel from "effect/LogLevel"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import * as ServerConfig from "../../../../src/core/server/config.js"
import * as Engine from "../../../../src/core/server/engine.js"
import type * as ServerModel from "../../../../src/core/server/model.js"

/** The real server's limits. */
export const defaultLimits: ServerConfig.Limits<Duration.Input> = ServerConfig.defaultLimits(Duration.seconds(30))

/** A duration input in milliseconds. */
export const toMillis = (duration: Duration.Input): number => Duration.toMillis(Duration.fromInputUnsafe(duration))

const logLevels: Readonly<Record<"Debug" | "Info" | "Warning" | "Error", LogLevel.Severity>> = {
  Debug: "Debug",
  Info: "Info",
  Warning: "Warn",
  Error: "Error"
}

/** An engine on the fiber's environment, stopped (every socket closed with 1001) when the scope closes. */
export const makeEngine: (
  options: ServerConfig.Options<Duration.Input>
) => Effect.Effect<
  { readonly engine: Engine.Engine; readonly pubsub: PubSub.PubSub<ServerModel.ServerEvent> },
  never,
  Scope.Scope
> = Effect.fnUntraced(function*(options: ServerConfig.Options<Duration.Input>) {
  const clock = yield* Clock.Clock
  const context = yield* Effect.context<never>()
  const fibers = yield* FiberSet.make()
  const runFork = yield* FiberSet.runtime(fibers)()
  const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<ServerModel.ServerEvent>(), PubSub.shutdown)
  const runSync = Effect.runSyncWith(context)
  const env: Engine.Env = {
    now: () => clock.currentTimeMillisUnsafe(),
    schedule: (millis, f) => {
      const fiber = runFork(
        Effect.andThen(
          Effect.sleep(Duration.millis(Math.max(0, millis))),
          Effect.sync(() => {
            try {
              f()
            } catch (cause) {
              env.log("Error", "unexpected error in a server timer", { cause: String(cause) })
            }
          })
        )
      )
      return () => fiber.interruptUnsafe()
    },
    log: (level, message, annotations) => {
      try {
        runSync(
          Effect.logWithLevel(logLevels[level])(message).pipe(
            Effect.annotateLogs({ module: "RealtimeServer", ...annotations })
          )
        )
      } catch {
        // logging never breaks the server
      }
    },
    publish: (event) => {
      PubSub.publishUnsafe(pubsub, event)
    }
  }
  const config = ServerConfig.resolve(options, defaultLimits, toMillis)
  const engine = new Engine.Engine(config, env)
  yield* Effect.addFinalizer(() => Effect.sync(() => engine.stop()))
  return { engine, pubsub }
})
