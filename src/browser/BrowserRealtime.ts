/**
 * The browser batteries: the global `WebSocket`, with `binaryType = "arraybuffer"` (the default
 * "blob" is decoded asynchronously and reorders binary frames against text frames).
 *
 * @since 0.1.0
 */
import * as Socket from "@effect/platform/Socket"
import * as Layer from "effect/Layer"

/**
 * `Socket.WebSocketConstructor` over `globalThis.WebSocket` (browsers, Deno, Bun, Node ≥ 22).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWebSocketConstructor: Layer.Layer<Socket.WebSocketConstructor> = Layer.succeed(
  Socket.WebSocketConstructor,
  (url, protocols) => {
    const ws = protocols === undefined ? new globalThis.WebSocket(url) : new globalThis.WebSocket(url, protocols)
    ws.binaryType = "arraybuffer"
    return ws
  }
)
