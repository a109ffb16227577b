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
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Attempts from "../../core/connection/attempts.js"
import * as Frames from "../../core/connection/frames.js"
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
    const { clock, heartbeat, network, serializer } = state.settings
    const { heartbeatHub } = state
    const { writeNow } = write

    const signals = new Attempts.Signals()
    const woken = Effect.async<void>((resume) => {
      signals.wait(() => resume(Effect.void))
      return Effect.sync(() => signals.cancel())
    })
    if (network !== undefined) {
      const unsubscribe = network.unsafeSubscribe((signal) =>
        signals.signal(signal._tag, state.open, clock.unsafeCurrentTimeMillis())
      )
      yield* Effect.addFinalizer(() => Effect.sync(unsubscribe))
    }
    const online = (network: Network.Network): Effect.Effect<void> =>
      Effect.async<void>((resume) => {
        if (signals.waitOnline(() => network.unsafeIsOnline(), () => resume(Effect.void))) return
        return Effect.sync(() => signals.cancel())
      })
    const sleepUnlessWoken = (duration: Duration.Duration) =>
      network === undefined ? Effect.sleep(duration) : Effect.raceFirst(Effect.sleep(duration), woken)

    const heartbeatLoop: Effect.Effect<never, HeartbeatTimeout> = Effect.gen(function*() {
      yield* sleepUnlessWoken(heartbeat.interval)
      const ref = state.refs.next()
      const reply = Deferred.unsafeMake<Transport.Reply>(FiberId.none)
      state.heartbeatRef = ref
      state.heartbeatReply = reply
      const sentAt = clock.unsafeCurrentTimeMillis()
      const encoded = serializer.encode(Frames.heartbeat(ref))
      if (encoded._tag === "Right") writeNow(encoded.right)
      yield* PubSub.publish(heartbeatHub, HeartbeatService.HeartbeatStatus.Sent({ ref }))
      let answer = yield* Deferred.await(reply).pipe(Effect.timeoutOption(heartbeat.timeout))
      // the reply may have arrived while the event loop was blocked: read it before giving up
      if (Option.isNone(answer)) {
        yield* ioTurn
        answer = yield* Deferred.poll(reply).pipe(Effect.flatMap(Option.match({
          onNone: () => Effect.succeedNone,
          onSome: Effect.asSome
        })))
      }
      if (Option.isNone(answer)) {
        state.heartbeatRef = undefined
        yield* PubSub.publish(heartbeatHub, HeartbeatService.HeartbeatStatus.Timeout({ ref }))
        return yield* new HeartbeatTimeout({ ref })
      }
      const latency = Duration.millis(clock.unsafeCurrentTimeMillis() - sentAt)
      heartbeatLatency.unsafeUpdate(Duration.toMillis(latency), [])
      yield* PubSub.publish(
        heartbeatHub,
        answer.value.status === "ok"
          ? HeartbeatService.HeartbeatStatus.Ok({ ref, latency })
          : HeartbeatService.HeartbeatStatus.Error({ ref, latency, response: answer.value.response })
      )
    }).pipe(Effect.forever)

    const attempting = () => signals.attempting(clock.unsafeCurrentTimeMillis())

    return { heartbeatLoop, sleepUnlessWoken, online, attempting }
  })

/** The heartbeat and the device's signals of one transport. @internal */
export type Heartbeat = Effect.Effect.Success<ReturnType<typeof make>>
