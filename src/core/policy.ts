/**
 * The client's policies written once for both editions: realtime-js's reconnect delays, which each
 * edition turns into its own `Schedule`, and the warning a policy layer logs when it is provided
 * where a client is already built.
 */

/**
 * realtime-js's reconnect and rejoin delays, in milliseconds: 1 s, 2 s, 5 s, 10 s, the last one
 * repeated forever.
 */
export const REALTIME_JS_DELAYS_MILLIS: readonly [number, ...Array<number>] = [1_000, 2_000, 5_000, 10_000]

/** The realtime-js delay before attempt `attempt` (1-based), in milliseconds: the last one past the table. */
export const realtimeJsDelayMillis = (attempt: number): number =>
  REALTIME_JS_DELAYS_MILLIS[Math.min(Math.max(attempt, 1), REALTIME_JS_DELAYS_MILLIS.length) - 1]!

/**
 * The warning of a policy layer (`name`, e.g. `Reconnect.layer`) provided below a client that is
 * already built, so that it cannot reach it; `option` is the client option that sets the policy.
 */
export const lateMessage = (name: string, option: string): string =>
  `${name} was provided below a RealtimeClient that is already built, so that client keeps its own policy. ` +
  `Pass \`${option}\` in the client's options (NodeRealtime.layer / BrowserRealtime.layer), ` +
  `provide the policy to the client's layer (\`NodeRealtime.layer(options).pipe(Layer.provide(${name}(...)))\`), ` +
  `or provide it outside the client's layer.`

/**
 * What is wrong with a heartbeat policy, in milliseconds (`undefined`: nothing): a zero, negative
 * or endless interval or timeout would heartbeat on every turn or never.
 */
export const heartbeatProblem = (intervalMillis: number, timeoutMillis: number): string | undefined => {
  for (const [name, millis] of [["interval", intervalMillis], ["timeout", timeoutMillis]] as const) {
    if (!(millis > 0 && Number.isFinite(millis))) {
      return `heartbeat ${name} must be a positive, finite duration, got ${millis} ms`
    }
  }
  return undefined
}
