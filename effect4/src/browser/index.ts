/**
 * @since 0.1.0
 */
export * as BrowserRealtime from "./BrowserRealtime.js"
