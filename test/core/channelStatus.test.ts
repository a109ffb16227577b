/**
 * The public statuses of the core's state machine (`src/core/channel/status.ts`), tested once for
 * both editions: each machine status maps to its constructor, and the statuses every subscribe goes
 * through are built once.
 */
import { describe, expect, it } from "vitest"
import * as Status from "../../src/core/channel/status.js"

type Made = { readonly tag: string; readonly args: ReadonlyArray<unknown> }

const recording = () => {
  let built = 0
  const made = (tag: string, ...args: ReadonlyArray<unknown>): Made => {
    built++
    return { tag, args }
  }
  const make: Status.StatusConstructors<Made> = {
    idle: () => made("Idle"),
    joining: (attempt) => made("Joining", attempt),
    subscribed: (downtime) => made("Subscribed", downtime),
    errored: (reason) => made("Errored", reason),
    timedOut: (timeout) => made("TimedOut", timeout),
    rejoining: (attempt, delay) => made("Rejoining", attempt, delay),
    closed: (reason) => made("Closed", reason)
  }
  return { make, built: () => built }
}

describe("core/channel/status", () => {
  it("maps each machine status to its constructor, with the downtime of a rejoin", () => {
    const { make } = recording()
    expect(Status.toStatus({ _tag: "Idle" }, undefined, make)).toEqual({ tag: "Idle", args: [] })
    expect(Status.toStatus({ _tag: "Joining", attempt: 2 }, undefined, make)).toEqual({ tag: "Joining", args: [2] })
    expect(Status.toStatus({ _tag: "Subscribed" }, 1500, make)).toEqual({ tag: "Subscribed", args: [1500] })
    expect(Status.toStatus({ _tag: "Errored", reason: "r" }, undefined, make)).toEqual({ tag: "Errored", args: ["r"] })
    expect(Status.toStatus({ _tag: "TimedOut", timeoutMillis: 10 }, undefined, make)).toEqual({
      tag: "TimedOut",
      args: [10]
    })
    expect(Status.toStatus({ _tag: "Rejoining", attempt: 1, delayMillis: 5 }, undefined, make)).toEqual({
      tag: "Rejoining",
      args: [1, 5]
    })
    expect(Status.toStatus({ _tag: "Closed", reason: "gone" }, undefined, make)).toEqual({
      tag: "Closed",
      args: ["gone"]
    })
  })

  it("builds Idle, the first Joining and a first Subscribed once; the others each time", () => {
    const { built, make } = recording()
    const once = Status.buildingCommonOnce(make)
    const before = built()
    for (let i = 0; i < 3; i++) {
      expect(once.idle()).toBe(once.idle())
      expect(once.joining(0)).toBe(once.joining(0))
      expect(once.subscribed(undefined)).toBe(once.subscribed(undefined))
    }
    expect(built()).toBe(before)
    expect(once.joining(1)).not.toBe(once.joining(1))
    expect(once.subscribed(10)).toEqual({ tag: "Subscribed", args: [10] })
    expect(once.closed("x")).toEqual({ tag: "Closed", args: ["x"] })
  })
})
