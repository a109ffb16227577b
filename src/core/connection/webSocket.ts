/**
 * The Node socket of both editions: `ws`'s WebSocket, made cheaper to read and able to say why an
 * upgrade was refused. The core imports no package: each edition passes `ws`'s class to
 * `withNativeMessages` (its `node/internal/webSocket.ts`).
 */

/** The largest body kept of a refused upgrade's answer, in characters. */
const MAX_BODY = 2048

/** A message as `ws` emits it: text and binary as a `Buffer` (text is decoded here). */
interface RawData {
  toString(): string
}

/** The HTTP answer `ws` hands to its `unexpected-response` event (a Node `IncomingMessage`). */
interface UpgradeAnswer {
  readonly statusCode?: number | undefined
  on(event: "data", listener: (chunk: Uint8Array) => void): unknown
  once(event: "end" | "error" | "close", listener: () => void): unknown
  destroy(): unknown
}

/** What of `ws`'s WebSocket is used: its emitter side, its EventTarget shim, `terminate`. */
export interface WsLike {
  once(event: "unexpected-response", listener: (request: any, response: UpgradeAnswer) => void): unknown
  on(event: "message", listener: (data: any, isBinary: boolean) => void): unknown
  off(event: "message", listener: (data: any, isBinary: boolean) => void): unknown
  terminate(): void
  addEventListener(type: any, listener: any, options?: any): void
  removeEventListener(type: any, listener: any): void
}

type MessageListener = (this: unknown, event: { readonly type: "message"; readonly data: unknown }) => void

/**
 * `ws`'s WebSocket (`Base`) whose `message` listeners are registered on its native `message`
 * event: the listener gets a plain `{ type, data }` (text as a string, binary as the `Buffer`, a
 * `Uint8Array`) instead of a `MessageEvent` built per frame by `ws`'s EventTarget shim. A refused
 * upgrade's HTTP answer is kept as `upgradeResponse` (set before the `error` event). Everything else
 * is `ws`'s.
 */
export const withNativeMessages = <C extends new(...args: Array<any>) => WsLike>(Base: C) =>
  class NativeMessageWebSocket extends Base {
    /** The native listener registered for each `message` listener. */
    readonly nativeListeners = new Map<MessageListener, (data: RawData, isBinary: boolean) => void>()
    /** The HTTP answer when the server refused the upgrade (set before the `error` event). */
    upgradeResponse: { readonly status: number; readonly body: string } | undefined = undefined

    constructor(...args: Array<any>) {
      super(...args)
      // ws reports a refused upgrade as "Unexpected server response: 401" and drops the body: keep
      // both (the body up to 2 KB), then abort the handshake as ws would.
      this.once("unexpected-response", (_request, response) => {
        const decoder = new TextDecoder()
        let body = ""
        let size = 0
        const done = () => {
          if (this.upgradeResponse !== undefined) return
          this.upgradeResponse = {
            status: response.statusCode ?? 0,
            body: (body + decoder.decode()).slice(0, MAX_BODY)
          }
          response.destroy()
          this.terminate()
        }
        response.on("data", (chunk: Uint8Array) => {
          body += decoder.decode(chunk, { stream: true })
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
      const native = (data: RawData, isBinary: boolean) => {
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
