/**
 * The heartbeat of the open connection, and the device's signals (when a `Network` is provided):
 * the network or the page came back. A signal ends a reconnect backoff or an offline wait at once,
 * and makes an open socket send its heartbeat now (a socket may have died while the page was frozen
 * or the network away).
 *
 * @internal
 */
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import * as Result from "effect/Result"
import * as Attempts from "../../../../src/core/connection/attempts.js"
import * as Frames from "../../../../src/core/connection/frames.js"
import * as HeartbeatService from "../../Heartbeat.js"
import type * as Network from "../../Network.js"
import type * as Transport from "../../Transport.js"
import * as Metrics from "./metrics.js"
import { ioTurn, type State } from "./state.js"
import type { Write } from "./write.js"

const { heartbeatLatency } = Metrics.metrics

/** A heartbeat went unanswered: the connection ends. @internal */
export class HeartbeatTimeout extends Data.TaggedError("HeartbeatTimeout")<{ readonly ref: string }> {}

/** @internal */
export const make = (state: State, write: Write) =>
  Effect.gen(function*() {
    const { clock, heartbeat, metricContext, network, serializer } = state.settings
    const { heartbeatHub } = state
    const { writeNow } = write

    const signals = new Attempts.Signals()
    const woken = Effect.callback<void>((resume) => {
      signals.wait(() => resume(Effect.void))
      return Effect.sync(() => signals.cancel())
    })
    if (network !== undefined) {
      const unsubscribe = network.unsafeSubscribe((signal) =>
        signals.signal(signal._tag, state.open, clock.currentTimeMillisUnsafe())
      )
      yield* Effect.addFinalizer(() => Effect.sync(unsubscribe))
    }
    const online = (network: Network.Network): Effect.Effect<void> =>
      Effect.callback<void>((resume) => {
        if (signals.waitOnline(() => network.unsafeIsOnline(), () => resume(Effect.void))) return
        return Effect.sync(() => signals.cancel())
      })
    const sleepUnlessWoken = (duration: Duration.Duration) =>
      network === undefined ? Effect.sleep(duration) : Effect.raceFirst(Effect.sleep(duration), woken)

    const heartbeatLoop: Effect.Effect<never, HeartbeatTimeout> = Effect.gen(function*() {
      yield* sleepUnlessWoken(heartbeat.interval)
      const ref = state.refs.next()
      const replied = Deferred.makeUnsafe<void>()
      state.heartbeatRef = ref
      state.heartbeatAnswer = undefined
      state.heartbeatWake = replied
      const sentAt = clock.currentTimeMillisUnsafe()
      const encoded = serializer.encode(Frames.heartbeat(ref))
      if (Result.isSuccess(encoded)) writeNow(encoded.success)
      PubSub.publishUnsafe(heartbeatHub, HeartbeatService.HeartbeatStatus.Sent({ ref }))
      yield* Effect.timeoutOption(Deferred.await(replied), heartbeat.timeout)
      // the reply may have arrived while the event loop was blocked: read it before giving up
      if (state.heartbeatAnswer === undefined) yield* ioTurn
      state.heartbeatWake = undefined
      const answer = state.heartbeatAnswer as Transport.Reply | undefined
      state.heartbeatAnswer = undefined
      if (answer === undefined) {
        state.heartbeatRef = undefined
        PubSub.publishUnsafe(heartbeatHub, HeartbeatService.HeartbeatStatus.Timeout({ ref }))
        return yield* new HeartbeatTimeout({ ref })
      }
      const latency = Duration.millis(clock.currentTimeMillisUnsafe() - sentAt)
      heartbeatLatency.updateUnsafe(Duration.toMillis(latency), metricContext)
      PubSub.publishUnsafe(
        heartbeatHub,
        answer.status === "ok"
          ? HeartbeatService.HeartbeatStatus.Ok({ ref, latency })
          : HeartbeatService.HeartbeatStatus.Error({ ref, latency, response: answer.response })
      )
      // every round starts with a sleep: no yield is needed between rounds, and none is made, so the
      // next sleep is registered at once, in the turn that read the reply (a test clock advancing
      // time in one step must not outrun it)
    }).pipe(Effect.forever({ disableYield: true }))

    const attempting = () => signals.attempting(clock.currentTimeMillisUnsafe())

    return { heartbeatLoop, sleepUnlessWoken, online, attempting }
  })

/** The heartbeat and the device's signals of one transport. @internal */
export type Heartbeat = Effect.Success<ReturnType<typeof make>>
