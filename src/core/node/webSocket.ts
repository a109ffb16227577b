/**
 * The client's own WebSocket for Node (RFC 6455, no extensions), the socket of both editions' Node
 * batteries: a WHATWG-style `addEventListener` surface over `node:http(s)` and the raw TCP socket.
 *
 * Why not `ws`: its reader is a `Writable` stream that copies and re-emits every frame through two
 * event emitters; this one parses the frames where the TCP chunk holds them and calls the message
 * listeners directly, with no allocation per frame but the payload's view (the benchmark's floods:
 * PERFORMANCE.md). What it does besides: binary messages are `Uint8Array`s (`Buffer`s) in order with
 * text; a message over `maxPayload` is refused from its header, before it is buffered; a refused
 * upgrade keeps the HTTP status and the start of the body (`upgradeResponse`); text and close
 * reasons are checked UTF-8; pings are answered; a protocol error from the server fails the
 * connection (an `error` event saying what, then `close` with 1006), as browsers do.
 *
 * @internal
 */
import { constants as Constants } from "node:buffer"
import * as Crypto from "node:crypto"
import * as Http from "node:http"
import * as Https from "node:https"
import type * as Net from "node:net"

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/** How much of a refused upgrade's body is kept. */
const MAX_UPGRADE_BODY = 2048
/** How long the body of a refused upgrade is waited for (its status is known already). */
const REFUSED_BODY_WAIT_MS = 1000
/** The most frames one message may come in (as `ws` 8.23's client default). */
const MAX_FRAGMENTS = 16 * 1024
/** How long a close handshake may take before the TCP socket is destroyed (as `ws`). */
const CLOSE_TIMEOUT_MS = 30_000
const CONNECTING = 0
const OPEN = 1
const CLOSING = 2
const CLOSED = 3

const OP_CONTINUATION = 0x0
const OP_TEXT = 0x1
const OP_BINARY = 0x2
const OP_CLOSE = 0x8
const OP_PING = 0x9
const OP_PONG = 0xa

/** The options of a `NodeWebSocket`. */
export interface NodeWebSocketOptions {
  /** Extra headers of the upgrade request. */
  readonly headers?: Readonly<Record<string, string>> | undefined
  /** The largest message accepted (bytes); a larger one fails the connection with 1009. Default 100 MiB. */
  readonly maxPayload?: number | undefined
  /** For `wss:`: the certificate authorities to trust instead of Node's (a private CA). */
  readonly ca?: string | Buffer | ReadonlyArray<string | Buffer> | undefined
}

/** The HTTP answer of a refused upgrade: its status and the start of its body. */
export interface UpgradeResponse {
  readonly status: number
  readonly body: string
}

/** The events a `NodeWebSocket` dispatches. */
export type NodeWebSocketEvent =
  | { readonly type: "open" }
  | { readonly type: "message"; readonly data: string | Uint8Array }
  | { readonly type: "error"; readonly message: string; readonly error: Error }
  | { readonly type: "close"; readonly code: number; readonly reason: string; readonly wasClean: boolean }

type Listener = (event: any) => void

interface Registered {
  readonly listener: Listener
  readonly once: boolean
}

/** A close code a peer may send (RFC 6455 7.4, as `ws` checks it). */
export const isValidCloseCode = (code: number): boolean =>
  (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
  (code >= 3000 && code <= 4999)

// masks for outgoing frames, from one random pool refilled as it runs out
const maskPool = Buffer.alloc(8192)
let maskOffset = maskPool.length

const nextMask = (): number => {
  if (maskOffset === maskPool.length) {
    Crypto.randomFillSync(maskPool)
    maskOffset = 0
  }
  const mask = maskPool.readUInt32BE(maskOffset)
  maskOffset += 4
  return mask
}

/** One masked client frame: header, mask key, the payload masked. */
const encodeFrame = (opcode: number, payload: Uint8Array | string): Buffer => {
  const length = typeof payload === "string" ? Buffer.byteLength(payload) : payload.length
  const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8
  const start = 2 + lengthBytes + 4
  const frame = Buffer.allocUnsafe(start + length)
  frame[0] = 0x80 | opcode
  if (lengthBytes === 0) frame[1] = 0x80 | length
  else if (lengthBytes === 2) {
    frame[1] = 0x80 | 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 0x80 | 127
    frame.writeUInt32BE(Math.floor(length / 0x100000000), 2)
    frame.writeUInt32BE(length >>> 0, 6)
  }
  const mask = nextMask()
  frame.writeUInt32BE(mask, start - 4)
  if (typeof payload === "string") frame.write(payload, start, "utf8")
  else frame.set(payload, start)
  const m0 = mask >>> 24, m1 = (mask >>> 16) & 0xff, m2 = (mask >>> 8) & 0xff, m3 = mask & 0xff
  const end = start + length
  let i = start
  for (; i + 3 < end; i += 4) {
    frame[i] ^= m0
    frame[i + 1] ^= m1
    frame[i + 2] ^= m2
    frame[i + 3] ^= m3
  }
  for (let k = 0; i < end; i++, k++) frame[i] ^= k === 0 ? m0 : k === 1 ? m1 : m2
  return frame
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/** `bytes` as UTF-8, or `undefined` when it is not valid UTF-8. */
const decodeText = (bytes: Uint8Array): string | undefined => {
  try {
    return utf8.decode(bytes)
  } catch {
    return undefined
  }
}

/** A failure of the connection: what the `error` event says, the close code sent to the server. */
class Failure {
  constructor(readonly code: number, readonly message: string) {}
}

const invalid = (code: number, message: string) => new Failure(code, `Invalid WebSocket frame: ${message}`)

/**
 * A WebSocket client for Node with the browser's event surface (`addEventListener` for `open`,
 * `message`, `error`, `close`; `send`; `close`; `readyState`; `bufferedAmount`).
 *
 * @internal
 */
export class NodeWebSocket {
  static readonly CONNECTING = CONNECTING
  static readonly OPEN = OPEN
  static readonly CLOSING = CLOSING
  static readonly CLOSED = CLOSED
  readonly CONNECTING = CONNECTING
  readonly OPEN = OPEN
  readonly CLOSING = CLOSING
  readonly CLOSED = CLOSED

  readonly url: string
  /** Binary messages are always `Uint8Array`s (`Buffer`s); the property is kept for the WHATWG shape. */
  binaryType: string = "nodebuffer"
  /** The subprotocol the server chose ("" for none). */
  protocol = ""
  readonly extensions = ""
  /** The HTTP answer when the server refused the upgrade (set before the `error` event). */
  upgradeResponse: UpgradeResponse | undefined = undefined

  private state = CONNECTING
  private readonly listeners: Record<string, ReadonlyArray<Registered>> = {}
  private readonly maxPayload: number
  private request: Http.ClientRequest | undefined
  private socket: Net.Socket | undefined
  // reading: chunks not yet parsed, their length, and how many bytes the next step needs
  private pending: Array<Buffer> = []
  private pendingLength = 0
  private needed = 2
  // a fragmented message being assembled
  private fragments: Array<Buffer> | undefined = undefined
  private fragmentsLength = 0
  private fragmentsOpcode = 0
  private fragmentsCount = 0
  // a frame whose length is known but whose bytes are still coming: assembled in one buffer that
  // grows as they arrive (no Buffer object kept per TCP chunk)
  private assembly: Buffer | undefined = undefined
  private assembled = 0
  private assemblyNeeded = 0
  // nothing more is read: a close frame came, or the connection failed
  private stopped = false
  // the close handshake
  private closeSent = false
  private closeReceived = false
  private closeCode = 1006
  private closeReason = ""
  private closeTimer: ReturnType<typeof setTimeout> | undefined = undefined
  // the payload of the latest ping, answered when the socket drains (RFC 6455 5.5.3: a pong for the
  // most recent ping only): a server that pings and never reads cannot make the pongs pile up
  private pongLater: Buffer | undefined = undefined
  private errorEmitted = false
  private closeEmitted = false

  constructor(address: string | URL, protocols?: string | ReadonlyArray<string>, options?: NodeWebSocketOptions) {
    const url = new URL(String(address))
    if (url.protocol === "http:") url.protocol = "ws:"
    else if (url.protocol === "https:") url.protocol = "wss:"
    if (url.protocol !== "ws:" && url.protocol !== "wss:") {
      throw new SyntaxError(`The URL's protocol must be one of "ws:", "wss:", "http:" or "https:"`)
    }
    if (url.hash !== "") throw new SyntaxError("The URL contains a fragment identifier")
    this.url = url.href
    // at most what one Buffer can hold (a frame is assembled in one)
    this.maxPayload = Math.min(options?.maxPayload ?? 100 * 1024 * 1024, Constants.MAX_LENGTH - 16)
    const offered = protocols === undefined ? [] : typeof protocols === "string" ? [protocols] : [...protocols]
    const key = Crypto.randomBytes(16).toString("base64")
    const secure = url.protocol === "wss:"
    const headers: Record<string, string> = {
      ...options?.headers,
      "Sec-WebSocket-Version": "13",
      "Sec-WebSocket-Key": key,
      Connection: "Upgrade",
      Upgrade: "websocket"
    }
    if (offered.length > 0) headers["Sec-WebSocket-Protocol"] = offered.join(",")
    const request = (secure ? Https : Http).request({
      hostname: url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname,
      port: url.port === "" ? (secure ? 443 : 80) : Number(url.port),
      path: `${url.pathname}${url.search}`,
      headers,
      agent: false,
      ...(secure && options?.ca !== undefined ? { ca: options.ca as string | Buffer | Array<string | Buffer> } : {})
    })
    this.request = request
    request.on("error", (error) => {
      if (this.request !== request) return
      this.request = undefined
      this.abort(error.message, error)
    })
    request.on("response", (response) => this.refused(request, response))
    request.on("upgrade", (response, socket, head) => {
      if (this.request !== request) {
        socket.destroy()
        return
      }
      this.request = undefined
      const problem = this.checkUpgrade(response, key, offered)
      if (problem !== undefined) {
        socket.destroy()
        return this.abort(problem, new Error(problem))
      }
      this.protocol = typeof response.headers["sec-websocket-protocol"] === "string"
        ? response.headers["sec-websocket-protocol"]
        : ""
      this.opened(socket, head)
    })
    request.end()
  }

  get readyState(): number {
    return this.state
  }

  /** Bytes written but not yet handed to the kernel. */
  get bufferedAmount(): number {
    return this.socket?.writableLength ?? 0
  }

  addEventListener(type: string, listener: Listener, options?: boolean | { readonly once?: boolean }): void {
    if (typeof listener !== "function") return
    const current = this.listeners[type] ?? []
    if (current.some((r) => r.listener === listener)) return
    const once = typeof options === "object" && options !== null && options.once === true
    // copy on write: a dispatch in progress goes on over the array it started with
    this.listeners[type] = [...current, { listener, once }]
  }

  removeEventListener(type: string, listener: Listener): void {
    const current = this.listeners[type]
    if (current === undefined) return
    const next = current.filter((r) => r.listener !== listener)
    if (next.length !== current.length) this.listeners[type] = next
  }

  /** Sends a text (`string`) or binary message; ignored unless the socket is open. */
  send(data: string | ArrayBuffer | ArrayBufferView): void {
    if (this.state === CONNECTING) throw new Error("WebSocket is not open: readyState 0 (CONNECTING)")
    if (this.state !== OPEN || this.socket === undefined) return
    if (typeof data === "string") {
      this.socket.write(encodeFrame(OP_TEXT, data))
    } else {
      const bytes = data instanceof ArrayBuffer
        ? new Uint8Array(data)
        : new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      this.socket.write(encodeFrame(OP_BINARY, bytes))
    }
  }

  /**
   * Starts the closing handshake (`code` 1000 or 3000-4999, `reason` at most 123 bytes); before the
   * socket opened, aborts it (an `error`, then `close` with 1006).
   */
  close(code?: number, reason?: string): void {
    if (code !== undefined && (!Number.isInteger(code) || !isValidCloseCode(code))) {
      throw new RangeError(`invalid close code ${code}: use 1000-1003, 1007-1014 or 3000-4999`)
    }
    if (reason !== undefined && Buffer.byteLength(reason) > 123) {
      throw new SyntaxError("the close reason must be at most 123 bytes")
    }
    if (this.state === CLOSING || this.state === CLOSED) return
    if (this.state === CONNECTING) {
      const request = this.request
      this.request = undefined
      request?.destroy()
      return this.abort(
        this.upgradeResponse !== undefined
          ? `Unexpected server response: ${this.upgradeResponse.status}`
          : "WebSocket was closed before the connection was established"
      )
    }
    this.sendClose(code, reason ?? "")
  }

  // -------------------------------------------------------------------------------------
  // handshake
  // -------------------------------------------------------------------------------------

  private checkUpgrade(
    response: Http.IncomingMessage,
    key: string,
    offered: ReadonlyArray<string>
  ): string | undefined {
    const upgrade = response.headers.upgrade
    if (typeof upgrade !== "string" || upgrade.toLowerCase() !== "websocket") return "Invalid Upgrade header"
    const accept = Crypto.createHash("sha1").update(key + GUID).digest("base64")
    if (response.headers["sec-websocket-accept"] !== accept) return "Invalid Sec-WebSocket-Accept header"
    const chosen = response.headers["sec-websocket-protocol"]
    if (chosen !== undefined) {
      if (offered.length === 0) return "Server sent a subprotocol but none was requested"
      if (!offered.includes(chosen)) return "Server sent an invalid subprotocol"
    } else if (offered.length > 0) return "Server sent no subprotocol"
    if (response.headers["sec-websocket-extensions"] !== undefined) {
      return "Server sent a Sec-WebSocket-Extensions header but no extension was requested"
    }
    return undefined
  }

  /** A refused upgrade: keeps the status and up to 2 KB of the body, then fails. */
  private refused(request: Http.ClientRequest, response: Http.IncomingMessage): void {
    if (this.request !== request) {
      response.destroy()
      return
    }
    const status = response.statusCode ?? 0
    // the status is known now: kept at once, whatever becomes of the body
    this.upgradeResponse = { status, body: "" }
    const chunks: Array<Buffer> = []
    let size = 0
    const done = () => {
      clearTimeout(timer)
      if (this.request !== request) return
      this.request = undefined
      this.upgradeResponse = { status, body: Buffer.concat(chunks).toString("utf8").slice(0, MAX_UPGRADE_BODY) }
      response.destroy()
      request.destroy()
      this.abort(`Unexpected server response: ${status}`)
    }
    // a body that never ends (chunked, or no Content-Length on a kept-alive connection) is not waited for
    const timer = setTimeout(done, REFUSED_BODY_WAIT_MS)
    response.on("data", (chunk: Buffer) => {
      chunks.push(chunk)
      size += chunk.length
      if (size >= MAX_UPGRADE_BODY) done()
    })
    response.once("end", done)
    response.once("error", done)
    response.once("close", done)
  }

  /** Fails before the socket opened: an `error` event, then `close` with 1006. */
  private abort(message: string, error: Error = new Error(message)): void {
    if (this.state === CLOSED) return
    this.state = CLOSED
    this.emitError(message, error)
    this.emitClose()
  }

  private opened(socket: Net.Socket, head: Buffer): void {
    this.socket = socket
    socket.setTimeout(0)
    socket.setNoDelay(true)
    socket.on("data", this.onData)
    socket.on("drain", () => {
      const payload = this.pongLater
      this.pongLater = undefined
      if (payload !== undefined && this.state === OPEN) socket.write(encodeFrame(OP_PONG, payload))
    })
    socket.on("end", () => {
      // the server half-closed: finish our side; `close` follows
      if (this.state === OPEN) this.state = CLOSING
      socket.end()
    })
    socket.on("error", (error) => {
      // a reset or a write after the peer went: said, then the socket is destroyed and `close`
      // follows (1006)
      if (this.state === OPEN) this.state = CLOSING
      this.emitError(error.message, error)
      socket.destroy()
    })
    socket.on("close", () => {
      if (this.closeTimer !== undefined) clearTimeout(this.closeTimer)
      this.closeTimer = undefined
      this.state = CLOSED
      this.emitClose()
    })
    this.state = OPEN
    this.dispatch("open", { type: "open" })
    // read even when an `open` listener closed the socket: a frame may go on in the next chunk
    if (head.length > 0) this.onData(head)
  }

  // -------------------------------------------------------------------------------------
  // reading
  // -------------------------------------------------------------------------------------

  private readonly onData = (chunk: Buffer): void => {
    if (this.stopped) return
    if (this.assembly !== undefined) {
      const take = Math.min(chunk.length, this.assemblyNeeded - this.assembled)
      if (this.assembled + take > this.assembly.length) {
        const grown = Buffer.allocUnsafe(
          Math.min(this.assemblyNeeded, Math.max(2 * this.assembly.length, this.assembled + take))
        )
        this.assembly.copy(grown, 0, 0, this.assembled)
        this.assembly = grown
      }
      chunk.copy(this.assembly, this.assembled, 0, take)
      this.assembled += take
      if (this.assembled < this.assemblyNeeded) return
      const whole = this.assembly
      this.assembly = undefined
      this.needed = 2
      let failure = this.parse(whole)
      if (failure === undefined && take < chunk.length) failure = this.parse(chunk.subarray(take))
      if (failure !== undefined) this.fail(failure)
      return
    }
    this.pending.push(chunk)
    this.pendingLength += chunk.length
    if (this.pendingLength < this.needed) return
    const data = this.pending.length === 1 ? chunk : Buffer.concat(this.pending, this.pendingLength)
    this.pending = []
    this.pendingLength = 0
    const failure = this.parse(data)
    if (failure !== undefined) this.fail(failure)
  }

  /** Parses and handles every whole frame of `data`; keeps the rest for the next chunk. */
  private parse(data: Buffer): Failure | undefined {
    const length = data.length
    let offset = 0
    while (offset < length) {
      if (this.stopped) return undefined
      const available = length - offset
      if (available < 2) break
      const b0 = data[offset]!
      const b1 = data[offset + 1]!
      const fin = (b0 & 0x80) !== 0
      const opcode = b0 & 0x0f
      if ((b0 & 0x70) !== 0) return invalid(1002, "RSV1, RSV2 and RSV3 must be clear")
      if ((b1 & 0x80) !== 0) return invalid(1002, "MASK must be clear")
      let payloadLength = b1 & 0x7f
      let header = 2
      if (payloadLength === 126) {
        if (available < 4) {
          this.keep(data, offset, 4)
          return undefined
        }
        payloadLength = data.readUInt16BE(offset + 2)
        header = 4
      } else if (payloadLength === 127) {
        if (available < 10) {
          this.keep(data, offset, 10)
          return undefined
        }
        const high = data.readUInt32BE(offset + 2)
        if (high > 0x1fffff) {
          return new Failure(1009, "Unsupported WebSocket frame: payload length > 2^53 - 1")
        }
        payloadLength = high * 0x100000000 + data.readUInt32BE(offset + 6)
        header = 10
      }
      if (opcode >= 0x8) {
        if (opcode > OP_PONG) return invalid(1002, `invalid opcode ${opcode}`)
        if (!fin) return invalid(1002, "FIN must be set")
        if (payloadLength > 125) return invalid(1002, `invalid payload length ${payloadLength}`)
      } else if (opcode === OP_CONTINUATION) {
        if (this.fragments === undefined) return invalid(1002, "invalid opcode 0")
      } else if (opcode === OP_TEXT || opcode === OP_BINARY) {
        if (this.fragments !== undefined) return invalid(1002, `invalid opcode ${opcode}`)
      } else return invalid(1002, `invalid opcode ${opcode}`)
      if (opcode < 0x8 && this.fragmentsLength + payloadLength > this.maxPayload) {
        return new Failure(1009, "Max payload size exceeded")
      }
      const end = offset + header + payloadLength
      if (end > length) {
        this.assemble(data.subarray(offset), header + payloadLength)
        return undefined
      }
      const payload = data.subarray(offset + header, end)
      offset = end
      const failure = fin && opcode !== OP_CONTINUATION && opcode < 0x8
        ? this.message(opcode, payload)
        : this.frame(opcode, fin, payload)
      if (failure !== undefined) return failure
    }
    if (offset < length) this.keep(data, offset, 2)
    return undefined
  }

  /** Keeps `data[offset..]` until `needed` bytes of it are there. */
  private keep(data: Buffer, offset: number, needed: number): void {
    const rest = data.subarray(offset)
    this.pending = [rest]
    this.pendingLength = rest.length
    this.needed = needed
  }

  /** Starts assembling a frame of `needed` bytes from its first bytes, `start`. */
  private assemble(start: Buffer, needed: number): void {
    const buffer = Buffer.allocUnsafe(Math.min(needed, Math.max(64 * 1024, 2 * start.length)))
    start.copy(buffer, 0)
    this.assembly = buffer
    this.assembled = start.length
    this.assemblyNeeded = needed
    this.pending = []
    this.pendingLength = 0
  }

  /** A whole text or binary message: to the listeners. */
  private message(opcode: number, payload: Buffer): Failure | undefined {
    this.needed = 2
    if (opcode === OP_TEXT) {
      const text = decodeText(payload)
      if (text === undefined) return new Failure(1007, "Invalid WebSocket frame: invalid UTF-8 sequence")
      this.dispatch("message", { type: "message", data: text })
    } else {
      this.dispatch("message", { type: "message", data: payload })
    }
    return undefined
  }

  /** A control frame or a fragment. */
  private frame(opcode: number, fin: boolean, payload: Buffer): Failure | undefined {
    this.needed = 2
    switch (opcode) {
      case OP_PING:
        if (this.state !== OPEN || this.socket === undefined) return undefined
        if (this.socket.writableNeedDrain) this.pongLater = Buffer.from(payload)
        else this.socket.write(encodeFrame(OP_PONG, payload))
        return undefined
      case OP_PONG:
        return undefined
      case OP_CLOSE:
        return this.closeFrame(payload)
      case OP_CONTINUATION: {
        if (++this.fragmentsCount > MAX_FRAGMENTS) return new Failure(1008, "Too many message fragments")
        if (payload.length > 0) this.fragments!.push(payload)
        this.fragmentsLength += payload.length
        if (!fin) return undefined
        const message = Buffer.concat(this.fragments!, this.fragmentsLength)
        const messageOpcode = this.fragmentsOpcode
        this.fragments = undefined
        this.fragmentsLength = 0
        this.fragmentsCount = 0
        return this.message(messageOpcode, message)
      }
      default:
        // the first fragment of a text or binary message: copied, the chunk may be large
        this.fragments = [Buffer.from(payload)]
        this.fragmentsLength = payload.length
        this.fragmentsOpcode = opcode
        this.fragmentsCount = 1
        return undefined
    }
  }

  /** The server's close frame: answered (once), then the TCP socket is ended. */
  private closeFrame(payload: Buffer): Failure | undefined {
    let code = 1005
    let reason = ""
    if (payload.length === 1) return invalid(1002, "invalid payload length 1")
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0)
      if (!isValidCloseCode(code)) return invalid(1002, `invalid status code ${code}`)
      const text = decodeText(payload.subarray(2))
      if (text === undefined) return new Failure(1007, "Invalid WebSocket frame: invalid UTF-8 sequence")
      reason = text
    }
    this.closeReceived = true
    this.stopped = true
    this.closeCode = code
    this.closeReason = reason
    this.pending = []
    this.pendingLength = 0
    this.assembly = undefined
    if (!this.closeSent) this.sendClose(code === 1005 ? undefined : code, reason)
    this.socket?.end()
    return undefined
  }

  /** A protocol error from the server: an `error` event, a close frame with `code`, `close` 1006. */
  private fail(failure: Failure): void {
    this.pending = []
    this.pendingLength = 0
    this.fragments = undefined
    this.assembly = undefined
    this.stopped = true
    if (this.state === OPEN) this.sendClose(failure.code, "")
    this.emitError(failure.message, new Error(failure.message))
    this.socket?.end()
  }

  // -------------------------------------------------------------------------------------
  // writing the close, and the events
  // -------------------------------------------------------------------------------------

  private sendClose(code: number | undefined, reason: string): void {
    const socket = this.socket
    this.state = CLOSING
    if (this.closeSent || socket === undefined) return
    this.closeSent = true
    let payload: Buffer
    if (code === undefined) payload = Buffer.alloc(0)
    else {
      payload = Buffer.allocUnsafe(2 + Buffer.byteLength(reason))
      payload.writeUInt16BE(code, 0)
      payload.write(reason, 2, "utf8")
    }
    if (!socket.destroyed) socket.write(encodeFrame(OP_CLOSE, payload))
    this.closeTimer = setTimeout(() => socket.destroy(), CLOSE_TIMEOUT_MS)
  }

  private emitError(message: string, error: Error): void {
    if (this.errorEmitted) return
    this.errorEmitted = true
    this.dispatch("error", { type: "error", message, error })
  }

  private emitClose(): void {
    if (this.closeEmitted) return
    this.closeEmitted = true
    // the server's code and reason when its close frame came; 1006 when the connection failed or
    // dropped without one
    this.dispatch("close", {
      type: "close",
      code: this.closeReceived ? this.closeCode : 1006,
      reason: this.closeReceived ? this.closeReason : "",
      wasClean: this.closeReceived && this.closeSent
    })
  }

  private dispatch(type: string, event: NodeWebSocketEvent): void {
    const registered = this.listeners[type]
    if (registered === undefined) return
    for (let i = 0; i < registered.length; i++) {
      const r = registered[i]!
      if (r.once) this.removeEventListener(type, r.listener)
      try {
        r.listener.call(this, event)
      } catch (error) {
        // as a browser reports it: the other listeners and the frames after it still run
        process.nextTick(() => {
          throw error
        })
      }
    }
  }
}
