/**
 * The Effect 4 parts of catching up after a rejoin: the settle delay as a `Duration` and the catch-up
 * whose settle timer is a fiber. The arithmetic is the core's (`core/channel/replay.ts`).
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import type * as Fiber from "effect/Fiber"
import * as Replay from "../../../../src/core/channel/replay.js"

/** How long without a replayed broadcast after which a rejoin's replay is taken to have ended. */
export const REPLAY_SETTLE: Duration.Duration = Duration.millis(Replay.REPLAY_SETTLE_MILLIS)

/** The replay of one rejoin, while it arrives; its settle timer is a fiber. */
export type CatchUp = Replay.CatchUp<Fiber.Fiber<void>>
