/**
 * The test server's engine in an Effect 3 program: its configuration from the `Options`, and its
 * environment from the running fiber's (the `Clock` in context, so `TestClock` drives its timers;
 * timers as fibers of a `FiberSet`, interrupted when the server's scope closes; logs through
 * Effect's logger; server events to a `PubSub`).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as FiberSet from "effect/FiberSet"
import * as LogLevel from "effect/LogLevel"
import * as PubSub from "effect/PubSub"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as ServerConfig from "../../core/server/config.js"
import * as Engine from "../../core/server/engine.js"
import type * as ServerModel from "../../core/server/model.js"

/** The real server's limits. */
export const defaultLimits: ServerConfig.Limits<Duration.DurationInput> = ServerConfig.defaultLimits(
  Duration.seconds(30)
)

/** A duration input in milliseconds. */
export const toMillis = (duration: Duration.DurationInput): number => Duration.toMillis(Duration.decode(duration))

const logLevels: Readonly<Record<"Debug" | "Info" | "Warning" | "Error", LogLevel.LogLevel>> = {
  Debug: LogLevel.Debug,
  Info: LogLevel.Info,
  Warning: LogLevel.Warning,
  Error: LogLevel.Error
}

/** An engine on the fiber's environment, stopped (every socket closed with 1001) when the scope closes. */
export const makeEngine = (
  options: ServerConfig.Options<Duration.DurationInput>
): Effect.Effect<
  { readonly engine: Engine.Engine; readonly pubsub: PubSub.PubSub<ServerModel.ServerEvent> },
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const runtime = yield* Effect.runtime<never>()
    const fibers = yield* FiberSet.make()
    const runFork = yield* FiberSet.runtime(fibers)()
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<ServerModel.ServerEvent>(), PubSub.shutdown)
    const runSync = Runtime.runSync(runtime)
    const env: Engine.Env = {
      now: () => clock.unsafeCurrentTimeMillis(),
      schedule: (millis, f) => {
        const fiber = runFork(
          Effect.sleep(Duration.millis(Math.max(0, millis))).pipe(
            Effect.zipRight(Effect.sync(() => {
              try {
                f()
              } catch (cause) {
                env.log("Error", "unexpected error in a server timer", { cause: String(cause) })
              }
            }))
          )
        )
        return () => fiber.unsafeInterruptAsFork(FiberId.none)
      },
      log: (level, message, annotations) => {
        try {
          runSync(
            Effect.logWithLevel(logLevels[level], message).pipe(
              Effect.annotateLogs({ module: "RealtimeServer", ...annotations })
            )
          )
        } catch {
          // logging never breaks the server
        }
      },
      publish: (event) => {
        pubsub.unsafeOffer(event)
      }
    }
    const config = ServerConfig.resolve(options, defaultLimits, toMillis)
    const engine = new Engine.Engine(config, env)
    yield* Effect.addFinalizer(() => Effect.sync(() => engine.stop()))
    return { engine, pubsub }
  })
