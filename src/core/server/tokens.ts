/**
 * A channel's token on the test server: re-checked at its `exp` (and at least every
 * `tokenCheckMillis`), refreshed by `access_token` (read permissions re-checked), and expired on
 * demand; an invalid or expired token shuts the channel down with the real server's message.
 */
import type { Engine } from "./engine.js"
import * as Jwt from "./jwt.js"
import { isRecord } from "./payload.js"
import type { ServerChannel } from "./state.js"

/** Schedules the channel's next token check (at its `exp`, or after `tokenCheckMillis`). */
export const scheduleCheck = (engine: Engine, channel: ServerChannel) => {
  channel.tokenCancel?.()
  channel.tokenCancel = undefined
  const exp = channel.claims.exp
  if (typeof exp !== "number") return
  const delay = Math.min(engine.config.tokenCheckMillis, exp * 1000 - engine.env.now())
  channel.tokenCancel = engine.env.schedule(Math.max(delay, 0), () => {
    channel.tokenCancel = undefined
    if (channel.closed) return
    const verified = Jwt.verify(channel.token, engine.config.jwtSecret, engine.env.now())
    if (verified._tag !== "Ok") return engine.shutdown(channel, Jwt.shutdownMessage(verified))
    scheduleCheck(engine, channel)
  })
}

/** Forces the token-expiry path now. */
export const expire = (engine: Engine, channel: ServerChannel) => {
  const exp = channel.claims.exp
  const now = Math.floor(engine.env.now() / 1000)
  const seconds = typeof exp === "number" && exp <= now ? Math.floor(now - exp) : 0
  engine.shutdown(channel, `Token has expired ${seconds} seconds ago`)
}

/** An `access_token` push: a new valid token replaces the channel's (opaque keys and the same token are ignored). */
export const refresh = (engine: Engine, channel: ServerChannel, payload: unknown) => {
  const token = isRecord(payload) ? payload.access_token : undefined
  if (typeof token !== "string" || token.startsWith("sb_") || token === channel.token) return
  const verified = Jwt.verify(token, engine.config.jwtSecret, engine.env.now())
  if (verified._tag !== "Ok") return engine.shutdown(channel, Jwt.shutdownMessage(verified))
  if (channel.isPrivate) {
    const permissions = engine.permissions(verified.claims, channel.subtopic)
    const before = channel.permissions
    if ((before.broadcastRead && !permissions.broadcastRead) || (before.presenceRead && !permissions.presenceRead)) {
      return engine.shutdown(
        channel,
        `You no longer have permission to read from this Channel topic: ${channel.subtopic}`
      )
    }
    channel.permissions = permissions
    channel.broadcastWrite = undefined
  }
  channel.token = token
  channel.claims = verified.claims
  scheduleCheck(engine, channel)
  if (channel.subscriptions.length > 0) engine.system(channel, "postgres_changes", "ok", "Subscribed to PostgreSQL")
  engine.env.publish({ _tag: "TokenRefreshed", connection: channel.connection.id, topic: channel.topic })
}
