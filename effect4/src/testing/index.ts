/**
 * The test kit: an in-memory WebSocket (`FakeSocket`) and an in-process Supabase Realtime server
 * (`RealtimeServer`), in memory or on 127.0.0.1.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as FakeSocket from "./FakeSocket.js"

/**
 * @since 0.1.0
 */
export * as RealtimeServer from "./RealtimeServer.js"

/**
 * @since 0.1.0
 */
export * as RealtimeTest from "./RealtimeTest.js"
