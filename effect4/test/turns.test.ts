/**
 * `internal/turns.ts`: callbacks after a number of scheduler turns, batched on one dispatcher per
 * scheduler. The scheduler here wakes only when the test says so (a turn = one wake-up).
 */
import { afterEach, assert, describe, it, vi } from "@effect/vitest"
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
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it("runs a callback after its number of turns, and the callbacks due in one turn in one wake-up", () => {
    const { scheduler, turn } = manualScheduler()
    const ran: Array<string> = []
    Turns.afterTurns(scheduler, 3, () => ran.push("a"))
    Turns.afterTurns(scheduler, 3, () => ran.push("b"))
    Turns.afterTurns(scheduler, 1, () => ran.push("c"))
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

  it("a callback that throws does not stop the others of its turn; its throw is raised, not swallowed", () => {
    const { scheduler, turn } = manualScheduler()
    const raised: Array<() => void> = []
    vi.spyOn(globalThis, "queueMicrotask").mockImplementation((f) => {
      raised.push(f)
    })
    const ran: Array<string> = []
    Turns.afterTurns(scheduler, 1, () => {
      throw new Error("boom")
    })
    Turns.afterTurns(scheduler, 1, () => ran.push("after"))
    turn()
    assert.deepStrictEqual(ran, ["after"])
    assert.strictEqual(raised.length, 1)
    assert.throws(() => raised[0]!(), "boom")
  })
})
