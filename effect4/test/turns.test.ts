/**
 * `internal/turns.ts`: callbacks after a number of scheduler turns, batched on one dispatcher per
 * scheduler. The scheduler here wakes only when the test says so (a turn = one wake-up).
 */
import { assert, describe, it } from "@effect/vitest"
import { Scheduler } from "effect"
import * as Turns from "../src/internal/turns.js"

const manualScheduler = () => {
  let pending: Array<() => void> = []
  const scheduler = new Scheduler.MixedScheduler("async", (f) => {
    pending.push(f)
    return () => {
      pending = pending.filter((g) => g !== f)
    }
  })
  const turn = () => {
    const now = pending
    pending = []
    for (const f of now) f()
    return now.length
  }
  return { scheduler, turn }
}

describe("afterTurns", () => {
  it("runs a callback after its number of turns, and the callbacks due in one turn in one wake-up", () => {
    const { scheduler, turn } = manualScheduler()
    const ran: Array<string> = []
    const unexpected = (error: unknown) => assert.fail(String(error))
    Turns.afterTurns(scheduler, 3, () => ran.push("a"), unexpected)
    Turns.afterTurns(scheduler, 3, () => ran.push("b"), unexpected)
    Turns.afterTurns(scheduler, 1, () => ran.push("c"), unexpected)
    assert.deepStrictEqual(ran, [])
    assert.strictEqual(turn(), 1)
    assert.deepStrictEqual(ran, ["c"])
    assert.strictEqual(turn(), 1)
    assert.deepStrictEqual(ran, ["c"])
    assert.strictEqual(turn(), 1)
    assert.deepStrictEqual(ran, ["c", "a", "b"])
    // nothing left: no further wake-up is asked for
    assert.strictEqual(turn(), 0)
  })

  it("a callback that throws does not stop the others of its turn; its throw goes to onError", () => {
    const { scheduler, turn } = manualScheduler()
    const errors: Array<unknown> = []
    const ran: Array<string> = []
    Turns.afterTurns(scheduler, 1, () => {
      throw new Error("boom")
    }, (error) => errors.push(error))
    Turns.afterTurns(scheduler, 1, () => ran.push("after"), (error) => errors.push(error))
    turn()
    assert.deepStrictEqual(ran, ["after"])
    assert.strictEqual(errors.length, 1)
    assert.strictEqual((errors[0] as Error).message, "boom")
  })
})
