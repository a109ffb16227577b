import WebSocket from "ws"

const MAX_BODY = 2048

type MessageListener = (this: unknown, event: { readonly type: "message"; readonly data: unknown }) => void

/**
 * `ws`'s WebSocket whose `message` listeners are registered on its native `message` event: the
 * listener gets a plain `{ type, data }` (text as a string, binary as the `Buffer`, a
 * `Uint8Array`) instead of a `MessageEvent` built per frame by `ws`'s EventTarget shim. Everything
 * else is `ws`'s.
 *
 * @internal
 */
export class NativeMessageWebSocket extends WebSocket {
  private readonly nativeListeners = new Map<MessageListener, (data: WebSocket.RawData, isBinary: boolean) => void>()
  /** The HTTP answer when the server refused the upgrade (set before the `error` event). */
  upgradeResponse: { readonly status: number; readonly body: string } | undefined = undefined

  constructor(address: string | URL, protocols?: string | Array<string>, options?: WebSocket.ClientOptions) {
    super(address, protocols, options)
    // ws reports a refused upgrade as "Unexpected server response: 401" and drops the body: keep
    // both (the body up to 2 KB), then abort the handshake as ws would.
    this.once("unexpected-response", (_request, response) => {
      const chunks: Array<Buffer> = []
      let size = 0
      const done = () => {
        if (this.upgradeResponse !== undefined) return
        this.upgradeResponse = {
          status: response.statusCode ?? 0,
          body: Buffer.concat(chunks).toString("utf8").slice(0, MAX_BODY)
        }
        response.destroy()
        this.terminate()
      }
      response.on("data", (chunk: Buffer) => {
        chunks.push(chunk)
        size += chunk.length
        if (size >= MAX_BODY) done()
      })
      response.once("end", done)
      response.once("error", done)
      response.once("close", done)
    })
  }

  override addEventListener(type: any, listener: any, options?: any): void {
    if (type !== "message" || typeof listener !== "function" || this.nativeListeners.has(listener)) {
      return super.addEventListener(type, listener, options)
    }
    const once = typeof options === "object" && options !== null && options.once === true
    const native = (data: WebSocket.RawData, isBinary: boolean) => {
      if (once) this.removeEventListener("message", listener)
      ;(listener as MessageListener).call(this, { type: "message", data: isBinary ? data : data.toString() })
    }
    this.nativeListeners.set(listener, native)
    this.on("message", native)
  }

  override removeEventListener(type: any, listener: any): void {
    const native = type === "message" ? this.nativeListeners.get(listener) : undefined
    if (native === undefined) return super.removeEventListener(type, listener)
    this.nativeListeners.delete(listener)
    this.off("message", native)
  }
}
