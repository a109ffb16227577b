/**
 * The test server on a real socket: a node `http` server whose upgrades go to a `ws`
 * `WebSocketServer({ noServer: true })` (handshake errors are HTTP answers with `{"error": …}`
 * bodies, as the real server's), and whose requests go to the HTTP API.
 */
import * as Http from "node:http"
import type * as Net from "node:net"
import type { Engine } from "./engine.js"
import * as HttpApi from "./http.js"
import type { Peer } from "./state.js"

/** What the listener needs of a WebSocket (`ws`'s `WebSocket` is one). */
export interface WebSocketLike {
  readonly readyState: number
  readonly OPEN: number
  readonly CLOSING: number
  readonly CLOSED: number
  send(data: string | Uint8Array, options: { readonly binary: boolean }): void
  close(code: number, reason: string): void
  terminate(): void
  on(event: "message", listener: (data: Buffer | ArrayBuffer | Array<Buffer>, isBinary: boolean) => void): unknown
  on(event: "close", listener: (code: number, reason: Buffer) => void): unknown
  on(event: "error", listener: (error: Error) => void): unknown
}

/** What the listener needs of a WebSocket server in `noServer` mode (`ws`'s `WebSocketServer` is one). */
export interface WebSocketServerLike {
  readonly clients: Iterable<WebSocketLike>
  handleUpgrade(
    request: Http.IncomingMessage,
    socket: Net.Socket,
    head: Buffer,
    callback: (ws: WebSocketLike) => void
  ): void
  close(): void
}

/** Makes the WebSocket server (the edition passes `ws`'s, so the core imports no package). */
export type MakeWebSocketServer = (
  options: { readonly noServer: true; readonly maxPayload: number }
) => WebSocketServerLike

/** A bound listener: its address, and how to close it. */
export interface BoundListener {
  readonly port: number
  readonly host: string
  readonly close: () => Promise<void>
}

const MAX_HTTP_BODY = 10_000_000

const headersOf = (request: Http.IncomingMessage): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(request.headers)) {
    if (value === undefined) continue
    out[key.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value
  }
  return out
}

const peerOf = (ws: WebSocketLike): Peer => ({
  send: (frame) => {
    if (ws.readyState !== ws.OPEN) return
    ws.send(frame, { binary: typeof frame !== "string" })
  },
  close: (code, reason) => {
    if (ws.readyState === ws.CLOSED || ws.readyState === ws.CLOSING) return
    try {
      ws.close(code, reason)
    } catch {
      ws.terminate()
    }
  },
  terminate: () => ws.terminate()
})

/** Starts listening; resolves once bound. */
export const listen = (
  engine: Engine,
  options: { readonly port: number; readonly host: string; readonly webSocketServer: MakeWebSocketServer }
): Promise<BoundListener> => {
  const wss = options.webSocketServer({ noServer: true, maxPayload: 5_000_000 })
  const sockets = new Set<Net.Socket>()

  const server = Http.createServer((request, response) => {
    const chunks: Array<Buffer> = []
    let size = 0
    request.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_HTTP_BODY) {
        response.writeHead(413, { "content-type": "application/json" })
        response.end(JSON.stringify({ message: "Payload Too Large" }))
        request.destroy()
        return
      }
      chunks.push(chunk)
    })
    request.on("end", () => {
      if (response.headersSent) return
      const body = Buffer.concat(chunks)
      const result = HttpApi.handle(engine, {
        method: request.method ?? "GET",
        path: request.url ?? "/",
        headers: headersOf(request),
        body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
      })
      response.writeHead(result.status, result.headers)
      response.end(Buffer.from(result.body.buffer, result.body.byteOffset, result.body.byteLength))
    })
    request.on("error", () => {})
  })

  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })

  server.on("upgrade", (request: Http.IncomingMessage, socket: Net.Socket, head: Buffer) => {
    socket.on("error", () => {})
    const handshake = engine.handshake(request.url ?? "/", headersOf(request))
    if (handshake._tag === "Refuse") {
      const answer = () => {
        if (socket.destroyed) return
        const body = Buffer.from(handshake.body)
        socket.end(
          `HTTP/1.1 ${handshake.status} ${Http.STATUS_CODES[handshake.status] ?? "Error"}\r\n` +
            (body.length > 0 ? "content-type: application/json; charset=utf-8\r\n" : "") +
            `content-length: ${body.length}\r\nconnection: close\r\n\r\n` + handshake.body
        )
      }
      const delay = engine.config.connectErrorDelayMillis
      if (delay > 0) engine.env.schedule(delay, answer)
      else answer()
      return
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      const connection = engine.open(peerOf(ws), handshake, "ws")
      ws.on("message", (data: Buffer | ArrayBuffer | Array<Buffer>, isBinary: boolean) => {
        const buffer = Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.isBuffer(data)
          ? data
          : Buffer.from(data)
        engine.onFrame(
          connection,
          isBinary ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength) : buffer.toString("utf8")
        )
      })
      ws.on("close", (code: number, reason: Buffer) => engine.onClose(connection, code, reason.toString("utf8")))
      ws.on("error", (error: Error) => engine.env.log("Debug", "socket error", { error: error.message }))
    })
  })

  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error)
    server.once("error", onError)
    server.listen(options.port, options.host, () => {
      server.off("error", onError)
      server.on("error", (error) => engine.env.log("Error", "listener error", { error: error.message }))
      const address = server.address() as Net.AddressInfo
      resolve({
        port: address.port,
        host: options.host,
        close: () =>
          new Promise<void>((done) => {
            for (const ws of wss.clients) ws.terminate()
            wss.close()
            for (const socket of sockets) socket.destroy()
            server.close(() => done())
          })
      })
    })
  })
}
