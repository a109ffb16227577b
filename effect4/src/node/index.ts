/**
 * @since 0.1.0
 */
export * as NodeRealtime from "./NodeRealtime.js"
