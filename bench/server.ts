/**
 * The bench server: plain `ws` on 127.0.0.1, speaking just enough of the protocol (join replies,
 * heartbeats, leave, broadcast ack and self-echo) and flooding pre-built frames straight to the TCP
 * socket, so that it is never the bottleneck.
 */
import { Either } from "effect"
import type * as Net from "node:net"
import { type WebSocket, WebSocketServer } from "ws"
import * as Protocol from "../src/Protocol.js"
import { binaryBroadcastFrame, type FloodSpec, textBroadcastFrame } from "./shared.js"

interface Joined {
  readonly ack: boolean
  readonly self: boolean
}

interface Connection {
  readonly ws: WebSocket
  readonly socket: Net.Socket
  readonly joined: Map<string, Joined>
}

export interface BenchServer {
  readonly url: string
  /** Writes `frames` (raw WebSocket frames) to the latest connection; resolves when the kernel has them. */
  readonly flood: (frames: Buffer) => Promise<void>
  readonly connections: () => number
  /** Drops every connection (a client that did not close its own). */
  readonly dropAll: () => void
  readonly close: () => Promise<void>
}

/** The header of an unmasked, final WebSocket frame. */
const frameHeader = (opcode: number, length: number): Buffer => {
  if (length < 126) return Buffer.from([0x80 | opcode, length])
  if (length < 65536) return Buffer.from([0x80 | opcode, 126, length >> 8, length & 0xff])
  const header = Buffer.alloc(10)
  header[0] = 0x80 | opcode
  header[1] = 127
  header.writeBigUInt64BE(BigInt(length), 2)
  return header
}

/**
 * The raw bytes of a flood: `perTopic` broadcasts to each topic, interleaved, sequence numbers per
 * topic from `firstSeq`.
 */
export const buildFlood = (spec: FloodSpec): Buffer => {
  const parts: Array<Buffer> = []
  for (let seq = spec.firstSeq; seq < spec.firstSeq + spec.perTopic; seq++) {
    for (const topic of spec.topics) {
      const payload = spec.binary
        ? Buffer.from(binaryBroadcastFrame(topic, seq))
        : Buffer.from(textBroadcastFrame(topic, seq), "utf8")
      parts.push(frameHeader(spec.binary ? 0x2 : 0x1, payload.length), payload)
    }
  }
  return Buffer.concat(parts)
}

const reply = (joinRef: string | null, ref: string | null, topic: string, response: unknown) =>
  JSON.stringify([joinRef, ref, topic, "phx_reply", { status: "ok", response }])

const handle = (connection: Connection, data: Buffer, isBinary: boolean) => {
  const { joined, ws } = connection
  const decoded = Protocol.serverV2.decode(isBinary ? new Uint8Array(data) : data.toString("utf8"))
  if (Either.isLeft(decoded)) {
    console.error("bench server: undecodable frame", decoded.left.message)
    return
  }
  const { event, joinRef, payload, ref, topic } = decoded.right
  switch (event) {
    case "phx_join": {
      const config = (payload as { config?: { broadcast?: { ack?: boolean; self?: boolean } } }).config
      joined.set(topic, { ack: config?.broadcast?.ack === true, self: config?.broadcast?.self === true })
      ws.send(reply(joinRef, ref, topic, { postgres_changes: [] }))
      return
    }
    case "heartbeat":
      ws.send(reply(null, ref, topic, {}))
      return
    case "phx_leave":
      joined.delete(topic)
      ws.send(reply(joinRef, ref, topic, {}))
      ws.send(JSON.stringify([joinRef, joinRef, topic, "phx_close", {}]))
      return
    case "access_token":
      return
    case "broadcast": {
      const channel = joined.get(topic)
      if (channel === undefined) return
      const body = payload as { event: string; payload: unknown }
      if (channel.self) {
        if (isBinary) {
          const frame = Protocol.encodeUserBroadcast({ topic, event: body.event, payload: body.payload })
          if (Either.isRight(frame)) ws.send(frame.right)
        } else {
          ws.send(
            JSON.stringify([null, null, topic, "broadcast", {
              type: "broadcast",
              event: body.event,
              payload: body.payload
            }])
          )
        }
      }
      if (channel.ack) ws.send(reply(joinRef, ref, topic, {}))
      return
    }
    default:
      if (ref !== null) ws.send(reply(joinRef, ref, topic, {}))
  }
}

export const startServer = (): Promise<BenchServer> =>
  new Promise((resolve, reject) => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false })
    const connections = new Set<Connection>()
    let latest: Connection | undefined
    wss.on("connection", (ws, request) => {
      const connection: Connection = { ws, socket: request.socket, joined: new Map() }
      connections.add(connection)
      latest = connection
      ws.on("message", (data, isBinary) => handle(connection, data as Buffer, isBinary))
      ws.on("error", () => {})
      ws.on("close", () => {
        connections.delete(connection)
        if (latest === connection) latest = undefined
      })
    })
    wss.on("error", reject)
    wss.on("listening", () => {
      const address = wss.address()
      if (address === null || typeof address === "string") return reject(new Error(`unexpected address ${address}`))
      resolve({
        url: `ws://127.0.0.1:${address.port}/socket`,
        flood: (frames) =>
          new Promise((resolveFlood, rejectFlood) => {
            if (latest === undefined) return rejectFlood(new Error("no client connected"))
            latest.socket.write(frames, (error) => error ? rejectFlood(error) : resolveFlood())
          }),
        connections: () => connections.size,
        dropAll: () => {
          for (const connection of connections) connection.ws.terminate()
        },
        close: () =>
          new Promise((resolveClose) => {
            for (const connection of connections) connection.ws.terminate()
            wss.close(() => resolveClose())
          })
      })
    })
  })
