import WebSocket from "ws"
import { withNativeMessages } from "../../core/connection/webSocket.js"

/**
 * `ws`'s WebSocket whose `message` listeners get a plain `{ type, data }` and which keeps the HTTP
 * answer of a refused upgrade as `upgradeResponse`: the core's `withNativeMessages` over `ws`.
 *
 * @internal
 */
export class NativeMessageWebSocket extends withNativeMessages(WebSocket) {}
