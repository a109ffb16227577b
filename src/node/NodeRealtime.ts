/**
 * The Node batteries: a `WebSocketConstructor` over the `ws` package (Node 20 has no global
 * WebSocket, and `ws` delivers binary frames synchronously as Buffers, so their order with text
 * frames is kept).
 *
 * @since 0.1.0
 */
import * as Socket from "@effect/platform/Socket"
import * as Layer from "effect/Layer"
import WebSocket from "ws"

/**
 * `Socket.WebSocketConstructor` over `ws`, on every Node version (platform-node's constructor
 * prefers the global WebSocket where there is one).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWebSocketConstructor: Layer.Layer<Socket.WebSocketConstructor> = Layer.succeed(
  Socket.WebSocketConstructor,
  (url, protocols) => new WebSocket(url, protocols) as unknown as globalThis.WebSocket
)
