/**
 * @since 0.1.0
 */
export * as AccessToken from "./AccessToken.js"

/**
 * @since 0.1.0
 */
export * as Heartbeat from "./Heartbeat.js"

/**
 * @since 0.1.0
 */
export * as HttpBroadcast from "./HttpBroadcast.js"

/**
 * @since 0.1.0
 */
export * as Network from "./Network.js"

/**
 * @since 0.1.0
 */
export * as PostgresChanges from "./PostgresChanges.js"

/**
 * @since 0.1.0
 */
export * as Presence from "./Presence.js"

/**
 * @since 0.1.0
 */
export * as Protocol from "./Protocol.js"

/**
 * @since 0.1.0
 */
export * as RealtimeChannel from "./RealtimeChannel.js"

/**
 * @since 0.1.0
 */
export * as RealtimeClient from "./RealtimeClient.js"

/**
 * @since 0.1.0
 */
export * as RealtimeError from "./RealtimeError.js"

/**
 * @since 0.1.0
 */
export * as Reconnect from "./Reconnect.js"

/**
 * @since 0.1.0
 */
export * as Transport from "./Transport.js"
