/**
 * The client's own Node WebSocket (`src/core/node/webSocket.ts`), against a raw TCP server on
 * 127.0.0.1 that does the handshake by hand and writes frames byte for byte as a test needs them:
 * split anywhere, fragmented, interleaved with pings, or broken as a hostile server would send them.
 */
import * as Fc from "fast-check"
import * as Crypto from "node:crypto"
import * as Https from "node:https"
import * as Net from "node:net"
import { assert, describe, it } from "vitest"
import { WebSocketServer } from "ws"
import { NodeWebSocket } from "../src/core/node/webSocket.js"

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// A throwaway self-signed certificate for 127.0.0.1 (P-256, valid to 2126), made for this test only.
const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBkDCCATagAwIBAgIURoX3CfnG07GZAzyQo9swMSxvpr4wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTIwMzEyMjEzN1oYDzIxMjYxMTA5
MTIyMTM3WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARMrZh4RFv63z4EevO9nnQNUiP0kOlbrIchIRDGd9R+kixKRyMFDAb1
J/NBCZoyTuLhdInLBTX1K77F5lW5QO+3o2QwYjAdBgNVHQ4EFgQUWgii+zIEs1QL
Pn0ISmgAQeIAmt8wHwYDVR0jBBgwFoAUWgii+zIEs1QLPn0ISmgAQeIAmt8wDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0gAMEUC
IFCEI8EoL18ZxRkACos3h2qkVPAvnONiJapSIE07nAyNAiEAxu9kFXD3yvOf+BMM
d9bjnIJYz/BVpuffbSgo4b43flE=
-----END CERTIFICATE-----`
const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgFdS01JdNLdrJbuGe
YLbfsegKsrdA2EV71Ld/YihgBLahRANCAARMrZh4RFv63z4EevO9nnQNUiP0kOlb
rIchIRDGd9R+kixKRyMFDAb1J/NBCZoyTuLhdInLBTX1K77F5lW5QO+3
-----END PRIVATE KEY-----`

/** An unmasked server frame. */
const frame = (
  opcode: number,
  payload: Uint8Array | string,
  options: { fin?: boolean; rsv?: number; mask?: boolean } = {}
) => {
  const body = typeof payload === "string" ? Buffer.from(payload) : Buffer.from(payload)
  const length = body.length
  const head = length < 126 ? 2 : length < 65536 ? 4 : 10
  const out = Buffer.alloc(head + (options.mask ? 4 : 0) + length)
  out[0] = (options.fin === false ? 0 : 0x80) | ((options.rsv ?? 0) << 4) | opcode
  const maskBit = options.mask ? 0x80 : 0
  if (head === 2) out[1] = maskBit | length
  else if (head === 4) {
    out[1] = maskBit | 126
    out.writeUInt16BE(length, 2)
  } else {
    out[1] = maskBit | 127
    out.writeBigUInt64BE(BigInt(length), 2)
  }
  body.copy(out, head + (options.mask ? 4 : 0)) // a zero mask key: the payload as it is
  return out
}

const closePayload = (code: number, reason = "") => {
  const out = Buffer.alloc(2 + Buffer.byteLength(reason))
  out.writeUInt16BE(code, 0)
  out.write(reason, 2)
  return out
}

interface ClientFrame {
  readonly opcode: number
  readonly payload: Buffer
}

/** Reads the client's frames: they must be masked. */
const clientFrames = (data: Buffer): { frames: Array<ClientFrame>; rest: Buffer } => {
  const frames: Array<ClientFrame> = []
  let offset = 0
  while (data.length - offset >= 2) {
    const b1 = data[offset + 1]!
    assert.strictEqual(b1 & 0x80, 0x80, "client frames are masked")
    let length = b1 & 0x7f
    let head = 2
    if (length === 126) {
      length = data.readUInt16BE(offset + 2)
      head = 4
    } else if (length === 127) {
      length = Number(data.readBigUInt64BE(offset + 2))
      head = 10
    }
    if (data.length - offset < head + 4 + length) break
    const mask = data.subarray(offset + head, offset + head + 4)
    const payload = Buffer.from(data.subarray(offset + head + 4, offset + head + 4 + length))
    for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!
    frames.push({ opcode: data[offset]! & 0x0f, payload })
    offset += head + 4 + length
  }
  return { frames, rest: data.subarray(offset) }
}

interface Peer {
  readonly write: (bytes: Buffer) => void
  /** Writes `bytes` in pieces of the given sizes (cycled), one write each. */
  readonly writeSplit: (bytes: Buffer, sizes: ReadonlyArray<number>) => Promise<void>
  readonly received: Array<ClientFrame>
  readonly end: () => void
  /** Stops reading what the client sends (its writes back up). */
  readonly pause: () => void
  readonly resume: () => void
}

type Handshake = (request: string, socket: Net.Socket) => boolean

/** A raw server: answers the upgrade (or lets `handshake` answer it), then hands over the peer. */
const withRawServer = async (
  run: (url: string, peer: Promise<Peer>) => Promise<void>,
  handshake?: Handshake
) => {
  let resolvePeer!: (peer: Peer) => void
  const peer = new Promise<Peer>((resolve) => resolvePeer = resolve)
  const sockets: Array<Net.Socket> = []
  const server = Net.createServer((socket) => {
    sockets.push(socket)
    let buffered: Buffer = Buffer.alloc(0)
    let upgraded = false
    const received: Array<ClientFrame> = []
    socket.on("error", () => {})
    socket.on("data", (chunk) => {
      buffered = Buffer.concat([buffered, chunk])
      if (!upgraded) {
        const end = buffered.indexOf("\r\n\r\n")
        if (end < 0) return
        const request = buffered.subarray(0, end).toString()
        buffered = buffered.subarray(end + 4)
        upgraded = true
        if (handshake !== undefined && handshake(request, socket)) return
        const key = /sec-websocket-key: (.*)/i.exec(request)![1]!.trim()
        const accept = Crypto.createHash("sha1").update(key + GUID).digest("base64")
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`
        )
        resolvePeer({
          write: (bytes) => socket.write(bytes),
          writeSplit: async (bytes, sizes) => {
            let offset = 0
            for (let i = 0; offset < bytes.length; i++) {
              const size = Math.max(1, sizes[i % sizes.length]!)
              socket.write(bytes.subarray(offset, offset + size))
              offset += size
              // a macrotask between writes: each piece arrives as its own chunk
              await new Promise((resolve) => setImmediate(resolve))
            }
          },
          received,
          end: () => socket.end(),
          pause: () => socket.pause(),
          resume: () => socket.resume()
        })
      }
      const { frames, rest } = clientFrames(buffered)
      received.push(...frames)
      buffered = rest
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  try {
    await run(`ws://127.0.0.1:${(server.address() as Net.AddressInfo).port}/socket`, peer)
  } finally {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  }
}

const until = (condition: () => boolean) =>
  new Promise<void>((resolve) => {
    const check = () => (condition() ? resolve() : setImmediate(check))
    check()
  })

interface Recorder {
  readonly messages: Array<string | Uint8Array>
  readonly errors: Array<string>
  readonly closes: Array<{ code: number; reason: string; wasClean: boolean }>
  readonly opened: Promise<void>
}

const record = (ws: NodeWebSocket): Recorder => {
  const recorder: Recorder = {
    messages: [],
    errors: [],
    closes: [],
    opened: new Promise((resolve) => ws.addEventListener("open", () => resolve()))
  }
  ws.addEventListener("message", (event: { data: string | Uint8Array }) => recorder.messages.push(event.data))
  ws.addEventListener("error", (event: { message: string }) => recorder.errors.push(event.message))
  ws.addEventListener(
    "close",
    (event: { code: number; reason: string; wasClean: boolean }) =>
      recorder.closes.push({ code: event.code, reason: event.reason, wasClean: event.wasClean })
  )
  return recorder
}

const asText = (data: string | Uint8Array) =>
  typeof data === "string" ? data : `bytes:${Buffer.from(data).toString("hex")}`

describe("NodeWebSocket", () => {
  it("talks to a ws server: text as strings, binary as bytes, in order; masked sends; a clean close", async () => {
    const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
    await new Promise((resolve) => server.once("listening", resolve))
    const echoed: Array<string> = []
    server.on("connection", (peer) => {
      peer.on("message", (data, isBinary) => {
        echoed.push(isBinary ? "binary" : data.toString())
        peer.send("one")
        peer.send(new Uint8Array([1, 2, 3]))
        peer.send("two ünï")
      })
    })
    try {
      const ws = new NodeWebSocket(`ws://127.0.0.1:${(server.address() as Net.AddressInfo).port}`)
      const seen = record(ws)
      const onceSeen: Array<unknown> = []
      ws.addEventListener("message", (event: { data: unknown }) => onceSeen.push(event.data), { once: true })
      await seen.opened
      assert.strictEqual(ws.readyState, NodeWebSocket.OPEN)
      ws.send("hello")
      await until(() => seen.messages.length === 3)
      assert.deepStrictEqual(seen.messages.map(asText), ["one", "bytes:010203", "two ünï"])
      assert.instanceOf(seen.messages[1], Uint8Array)
      assert.deepStrictEqual(onceSeen, ["one"])
      assert.deepStrictEqual(echoed, ["hello"])
      ws.close(1000, "done")
      await until(() => seen.closes.length === 1)
      assert.deepStrictEqual(seen.closes, [{ code: 1000, reason: "done", wasClean: true }])
      assert.deepStrictEqual(seen.errors, [])
      assert.strictEqual(ws.readyState, NodeWebSocket.CLOSED)
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  })

  it("wss: the upgrade and the messages over TLS, trusting the given CA; an untrusted certificate is an error", async () => {
    const https = Https.createServer({ cert: TEST_CERT, key: TEST_KEY })
    const server = new WebSocketServer({ server: https })
    server.on("connection", (peer) => peer.on("message", (data) => peer.send(`echo ${data.toString()}`)))
    await new Promise<void>((resolve) => https.listen(0, "127.0.0.1", resolve))
    const url = `wss://127.0.0.1:${(https.address() as Net.AddressInfo).port}/socket`
    try {
      const ws = new NodeWebSocket(url, undefined, { ca: TEST_CERT })
      const seen = record(ws)
      await seen.opened
      ws.send("over tls")
      await until(() => seen.messages.length === 1)
      assert.deepStrictEqual(seen.messages, ["echo over tls"])
      ws.close()
      await until(() => seen.closes.length === 1)
      assert.strictEqual(seen.closes[0]!.code, 1005)
      const untrusted = new NodeWebSocket(url)
      const refused = record(untrusted)
      await until(() => refused.closes.length === 1)
      assert.match(refused.errors[0]!, /self[- ]signed/)
      assert.strictEqual(refused.closes[0]!.code, 1006)
    } finally {
      for (const client of server.clients) client.terminate()
      await new Promise((resolve) => https.close(resolve))
    }
  })

  it("property: messages of any size, fragmented or not, with pings between, split into any chunks, arrive whole and in order", async () => {
    const message = Fc.oneof(
      Fc.string({ unit: "grapheme", maxLength: 40 }).map((s) => ({ text: true as const, data: s })),
      Fc.uint8Array({ maxLength: 300 }).map((b) => ({ text: false as const, data: b })),
      Fc.constantFrom(200, 70_000).map((n) => ({ text: false as const, data: new Uint8Array(n).fill(7) }))
    )
    const item = Fc.record({ message, fragments: Fc.integer({ min: 1, max: 3 }), ping: Fc.boolean() })
    await Fc.assert(
      Fc.asyncProperty(
        Fc.array(item, { minLength: 1, maxLength: 12 }),
        Fc.array(Fc.integer({ min: 1, max: 600 }), { minLength: 1, maxLength: 8 }),
        async (items, sizes) => {
          await withRawServer(async (url, peerPromise) => {
            const ws = new NodeWebSocket(url)
            const seen = record(ws)
            await seen.opened
            const peer = await peerPromise
            const parts: Array<Buffer> = []
            for (const { fragments, message, ping } of items) {
              const bytes = typeof message.data === "string" ? Buffer.from(message.data) : Buffer.from(message.data)
              const step = Math.ceil(bytes.length / fragments) || 1
              const pieces: Array<Buffer> = []
              for (let offset = 0; offset < bytes.length; offset += step) {
                pieces.push(bytes.subarray(offset, offset + step))
              }
              if (pieces.length === 0) pieces.push(Buffer.alloc(0))
              pieces.forEach((piece, i) => {
                parts.push(
                  frame(i === 0 ? (message.text ? 1 : 2) : 0, piece, { fin: i === pieces.length - 1 })
                )
                if (ping && i === 0) parts.push(frame(0x9, "p"))
              })
            }
            await peer.writeSplit(Buffer.concat(parts), sizes)
            await until(() => seen.messages.length === items.length || seen.closes.length > 0)
            assert.deepStrictEqual(seen.errors, [])
            assert.deepStrictEqual(
              seen.messages.map(asText),
              items.map(({ message }) => typeof message.data === "string" ? message.data : asText(message.data))
            )
            const pings = items.filter((i) => i.ping).length
            await until(() => peer.received.filter((f) => f.opcode === 0xa).length === pings)
            ws.close()
          })
        }
      ),
      { numRuns: 40 }
    )
  })

  it("answers a close from the server with its code, and reports it", async () => {
    await withRawServer(async (url, peerPromise) => {
      const ws = new NodeWebSocket(url)
      const seen = record(ws)
      await seen.opened
      const peer = await peerPromise
      peer.write(frame(0x8, closePayload(4001, "bye")))
      await until(() => peer.received.some((f) => f.opcode === 0x8))
      assert.strictEqual(peer.received.find((f) => f.opcode === 0x8)!.payload.readUInt16BE(0), 4001)
      peer.end()
      await until(() => seen.closes.length === 1)
      assert.deepStrictEqual(seen.closes, [{ code: 4001, reason: "bye", wasClean: true }])
      assert.deepStrictEqual(seen.errors, [])
    })
  })

  const hostile: ReadonlyArray<readonly [string, () => Buffer, string, number]> = [
    ["a masked frame", () => frame(1, "x", { mask: true }), "MASK must be clear", 1002],
    ["reserved bits", () => frame(1, "x", { rsv: 4 }), "RSV1, RSV2 and RSV3 must be clear", 1002],
    ["an unknown opcode", () => frame(3, "x"), "invalid opcode 3", 1002],
    ["an unknown control opcode", () => frame(0xb, "x"), "invalid opcode 11", 1002],
    ["a fragmented control frame", () => frame(0x9, "x", { fin: false }), "FIN must be set", 1002],
    ["a control frame over 125 bytes", () => frame(0x9, "x".repeat(126)), "invalid payload length 126", 1002],
    ["a continuation with nothing to continue", () => frame(0, "x"), "invalid opcode 0", 1002],
    [
      "a new message inside a fragmented one",
      () => Buffer.concat([frame(1, "a", { fin: false }), frame(2, "b")]),
      "invalid opcode 2",
      1002
    ],
    ["invalid UTF-8 text", () => frame(1, new Uint8Array([0xc3, 0x28])), "invalid UTF-8 sequence", 1007],
    [
      "invalid UTF-8 across fragments",
      () => Buffer.concat([frame(1, new Uint8Array([0xe2, 0x82]), { fin: false }), frame(0, new Uint8Array([0x28]))]),
      "invalid UTF-8 sequence",
      1007
    ],
    ["a close frame of one byte", () => frame(0x8, new Uint8Array([3])), "invalid payload length 1", 1002],
    ["a close frame with code 1005", () => frame(0x8, closePayload(1005)), "invalid status code 1005", 1002],
    ["a close frame with code 999", () => frame(0x8, closePayload(999)), "invalid status code 999", 1002],
    [
      "a close reason that is not UTF-8",
      () => frame(0x8, Buffer.concat([closePayload(1000), Buffer.from([0xff])])),
      "invalid UTF-8 sequence",
      1007
    ],
    [
      "a 64-bit length over 2^53",
      () => Buffer.from([0x82, 127, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
      "payload length > 2^53 - 1",
      1009
    ],
    [
      "a message over maxPayload, refused from its header",
      () => Buffer.from([0x82, 127, 0, 0, 0, 0, 0x10, 0, 0, 0]),
      "Max payload size exceeded",
      1009
    ],
    [
      "fragments that add up to over maxPayload",
      () => Buffer.concat([frame(2, Buffer.alloc(600), { fin: false }), frame(0, Buffer.alloc(600))]),
      "Max payload size exceeded",
      1009
    ]
  ]

  for (const [what, bytes, message, code] of hostile) {
    it(`fails the connection on ${what}: an error that says so, a ${code} close sent, then close 1006`, async () => {
      await withRawServer(async (url, peerPromise) => {
        const ws = new NodeWebSocket(url, undefined, { maxPayload: 1000 })
        const seen = record(ws)
        await seen.opened
        const peer = await peerPromise
        peer.write(bytes())
        peer.write(frame(1, "after"))
        await until(() => seen.closes.length === 1)
        assert.strictEqual(seen.errors.length, 1)
        assert.include(seen.errors[0], message)
        assert.deepStrictEqual(seen.messages, [])
        assert.strictEqual(seen.closes[0]!.code, 1006)
        assert.isFalse(seen.closes[0]!.wasClean)
        const close = peer.received.find((f) => f.opcode === 0x8)
        assert.strictEqual(close?.payload.readUInt16BE(0), code)
      })
    })
  }

  it("a flood of empty continuation frames fails the connection (1008) instead of growing the heap", async () => {
    await withRawServer(async (url, peerPromise) => {
      const ws = new NodeWebSocket(url, undefined, { maxPayload: 1000 })
      const seen = record(ws)
      await seen.opened
      const peer = await peerPromise
      // 100,000 empty continuations: each adds nothing to the size, so maxPayload never trips
      peer.write(Buffer.concat([frame(1, "a", { fin: false }), Buffer.alloc(2 * 100_000)]))
      await until(() => seen.closes.length === 1)
      assert.deepStrictEqual(seen.errors, ["Too many message fragments"])
      await until(() => peer.received.some((f) => f.opcode === 0x8))
      assert.strictEqual(peer.received.find((f) => f.opcode === 0x8)!.payload.readUInt16BE(0), 1008)
    })
  })

  it("a server that floods pings and never reads gets one pong for the latest ping, not a pile of them", async () => {
    const pings = 1_500_000
    await withRawServer(async (url, peerPromise) => {
      const ws = new NodeWebSocket(url)
      const seen = record(ws)
      await seen.opened
      const peer = await peerPromise
      peer.pause()
      peer.write(Buffer.alloc(2 * pings).fill(Buffer.from([0x89, 0x00])))
      const socket = (ws as unknown as { readonly socket: Net.Socket }).socket
      await until(() => socket.bytesRead >= 2 * pings)
      // unbounded, 1.5 million pongs would queue about 9 MB here
      assert.isBelow(ws.bufferedAmount, 1024 * 1024)
      peer.resume()
    })
  })

  it("a large frame that trickles in (pieces of 1 byte to 30 KB) arrives whole, and the frame after it", async () => {
    await withRawServer(async (url, peerPromise) => {
      const ws = new NodeWebSocket(url)
      const seen = record(ws)
      await seen.opened
      const peer = await peerPromise
      const payload = Buffer.alloc(100_000, 0x61)
      await peer.writeSplit(Buffer.concat([frame(1, payload), frame(2, new Uint8Array([9]))]), [1, 7, 4096, 3, 30_000])
      await until(() => seen.messages.length === 2)
      assert.strictEqual(seen.messages[0], payload.toString())
      assert.deepStrictEqual(seen.messages.slice(1).map(asText), ["bytes:09"])
      assert.deepStrictEqual(seen.errors, [])
    })
  })

  it("the bytes that came with the 101 are read even when an open listener closes the socket", async () => {
    const message = frame(2, Buffer.alloc(300, 0x88))
    await withRawServer(
      async (url) => {
        const ws = new NodeWebSocket(url)
        ws.addEventListener("open", () => ws.close(1000))
        const seen = record(ws)
        await until(() => seen.messages.length === 1 || seen.errors.length > 0)
        assert.deepStrictEqual(seen.errors, [])
        assert.deepStrictEqual(seen.messages.map((m) => (m as Uint8Array).length), [300])
      },
      (request, socket) => {
        const key = /sec-websocket-key: (.*)/i.exec(request)![1]!.trim()
        const accept = Crypto.createHash("sha1").update(key + GUID).digest("base64")
        socket.write(
          Buffer.concat([
            Buffer.from(
              `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`
            ),
            message.subarray(0, 50)
          ])
        )
        setImmediate(() => socket.write(message.subarray(50)))
        return true
      }
    )
  })

  it("close(1001) and the other codes RFC 6455 allows a client are accepted; invalid ones throw", async () => {
    await withRawServer(async (url) => {
      const ws = new NodeWebSocket(url)
      const seen = record(ws)
      await seen.opened
      assert.throws(() => ws.close(1005), RangeError)
      assert.throws(() => ws.close(2000), RangeError)
      assert.throws(() => ws.close(1000, "x".repeat(124)), SyntaxError)
      ws.close(1001, "going away")
      assert.strictEqual(ws.readyState, NodeWebSocket.CLOSING)
    })
  })

  it("a refused upgrade whose body never ends still fails, with its status and what came of the body", async () => {
    await withRawServer(
      async (url) => {
        const ws = new NodeWebSocket(url)
        const seen = record(ws)
        await until(() => seen.closes.length === 1)
        assert.deepStrictEqual(seen.errors, ["Unexpected server response: 401"])
        assert.deepStrictEqual(ws.upgradeResponse, { status: 401, body: "hello" })
      },
      (_request, socket) => {
        socket.write("HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        return true
      }
    )
  })

  it("a refused upgrade keeps the HTTP status and body, then fails with 1006", async () => {
    await withRawServer(
      async (url) => {
        const ws = new NodeWebSocket(url)
        const seen = record(ws)
        await until(() => seen.closes.length === 1)
        assert.deepStrictEqual(ws.upgradeResponse, { status: 401, body: "{\"message\":\"bad key\"}" })
        assert.deepStrictEqual(seen.errors, ["Unexpected server response: 401"])
        assert.strictEqual(seen.closes[0]!.code, 1006)
      },
      (_request, socket) => {
        const body = "{\"message\":\"bad key\"}"
        socket.end(`HTTP/1.1 401 Unauthorized\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
        return true
      }
    )
  })

  it("a 101 with a wrong Sec-WebSocket-Accept is refused", async () => {
    await withRawServer(
      async (url) => {
        const ws = new NodeWebSocket(url)
        const seen = record(ws)
        await until(() => seen.closes.length === 1)
        assert.deepStrictEqual(seen.errors, ["Invalid Sec-WebSocket-Accept header"])
        assert.strictEqual(ws.readyState, NodeWebSocket.CLOSED)
      },
      (_request, socket) => {
        socket.write(
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n"
        )
        return true
      }
    )
  })

  it("close() before the upgrade answers aborts: an error, close 1006, no throw", async () => {
    await withRawServer(
      async (url) => {
        const ws = new NodeWebSocket(url)
        const seen = record(ws)
        ws.close()
        await until(() => seen.closes.length === 1)
        assert.deepStrictEqual(seen.errors, ["WebSocket was closed before the connection was established"])
        assert.strictEqual(seen.closes[0]!.code, 1006)
      },
      () => true // never answers
    )
  })

  it("a refused TCP connection is an error and close 1006", async () => {
    const server = Net.createServer()
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const port = (server.address() as Net.AddressInfo).port
    await new Promise((resolve) => server.close(resolve))
    const ws = new NodeWebSocket(`ws://127.0.0.1:${port}`)
    const seen = record(ws)
    await until(() => seen.closes.length === 1)
    assert.include(seen.errors[0], "ECONNREFUSED")
    assert.strictEqual(seen.closes[0]!.code, 1006)
  })

  it("a dropped TCP connection is close 1006", async () => {
    await withRawServer(async (url, peerPromise) => {
      const ws = new NodeWebSocket(url)
      const seen = record(ws)
      await seen.opened
      const peer = await peerPromise
      peer.end()
      await until(() => seen.closes.length === 1)
      assert.strictEqual(seen.closes[0]!.code, 1006)
      assert.isFalse(seen.closes[0]!.wasClean)
    })
  })

  it("refuses a URL that is not ws, wss, http or https, and invalid close codes", () => {
    assert.throws(() => new NodeWebSocket("ftp://127.0.0.1/"), /protocol/)
    assert.throws(() => new NodeWebSocket("ws://127.0.0.1/#x"), /fragment/)
  })
})
