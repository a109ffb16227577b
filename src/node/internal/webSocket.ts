import WebSocket from "ws"

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
