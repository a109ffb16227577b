/**
 * The `realtime:` prefix, written once in `src/core/topic.ts` and used by both editions' channel and
 * client, the HTTP broadcast checks and the test server.
 */
import { describe, expect, it } from "vitest"
import * as Topic from "../src/core/topic.js"

describe("core/topic", () => {
  it("topicOf prefixes a name once", () => {
    expect(Topic.topicOf("room")).toBe("realtime:room")
    expect(Topic.topicOf("realtime:room")).toBe("realtime:room")
    expect(Topic.topicOf("")).toBe("realtime:")
  })

  it("subTopicOf strips one prefix", () => {
    expect(Topic.subTopicOf("realtime:room")).toBe("room")
    expect(Topic.subTopicOf("room")).toBe("room")
    expect(Topic.subTopicOf("realtime:realtime:room")).toBe("realtime:room")
  })

  it("the two are inverse on names without the prefix", () => {
    for (const name of ["room", "a:b", "realtimeish", " "]) {
      expect(Topic.subTopicOf(Topic.topicOf(name))).toBe(name)
    }
  })

  it("isEmpty: no name, or the bare prefix", () => {
    expect(Topic.isEmpty("")).toBe(true)
    expect(Topic.isEmpty("realtime:")).toBe(true)
    expect(Topic.isEmpty("realtime:x")).toBe(false)
    expect(Topic.hasPrefix("realtime:x")).toBe(true)
    expect(Topic.hasPrefix("room")).toBe(false)
  })
})
