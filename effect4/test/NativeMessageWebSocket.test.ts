/**
 * The Node WebSocket's message path: `ws`'s native event, handed to EventTarget-style listeners.
 */
import { assert, describe, it } from "@effect/vitest"
import type { AddressInfo } from "node:net"
import { WebSocketServer } from "ws"
import { NativeMessageWebSocket } from "../src/node/internal/webSocket.js"

const withServer = async (run: (url: string, send: (data: string | Uint8Array) => void) => Promise<void>) => {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  await new Promise((resolve) => server.once("listening", resolve))
  const peers: Array<import("ws").WebSocket> = []
  server.on("connection", (peer) => peers.push(peer))
  try {
    await run(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`, (data) => {
      for (const peer of peers) peer.send(data)
    })
  } finally {
    for (const peer of peers) peer.terminate()
    await new Promise((resolve) => server.close(resolve))
  }
}

const opened = (ws: NativeMessageWebSocket) => new Promise((resolve) => ws.addEventListener("open", resolve))
const until = (condition: () => boolean) =>
  new Promise<void>((resolve) => {
    const check = () => (condition() ? resolve() : setImmediate(check))
    check()
  })

describe("NativeMessageWebSocket", () => {
  it("hands text as strings and binary as bytes, in order; once and removeEventListener work", () =>
    withServer(async (url, send) => {
      const ws = new NativeMessageWebSocket(url)
      await opened(ws)
      const seen: Array<unknown> = []
      const onceSeen: Array<unknown> = []
      const all = (event: { data: unknown }) => seen.push(event.data)
      ws.addEventListener("message", all)
      ws.addEventListener("message", (event: { data: unknown }) => onceSeen.push(event.data), { once: true })
      send("one")
      send(new Uint8Array([1, 2, 3]))
      send("two")
      await until(() => seen.length === 3)
      assert.strictEqual(seen[0], "one")
      assert.instanceOf(seen[1], Uint8Array)
      assert.deepStrictEqual([...(seen[1] as Uint8Array)], [1, 2, 3])
      assert.strictEqual(seen[2], "two")
      assert.deepStrictEqual(onceSeen, ["one"])
      ws.removeEventListener("message", all)
      let other = 0
      ws.addEventListener("message", () => other++)
      send("three")
      await until(() => other === 1)
      assert.strictEqual(seen.length, 3)
      ws.close()
    }))
})
