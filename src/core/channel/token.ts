/**
 * A channel's access token: which token fetch its join takes, and what the server has. Only the
 * latest fetch asked for answers the join (a fetch of an attempt or a join cycle that ended, the
 * subscriber having given up, answers nothing, even when the new cycle is at attempt 0 again). A
 * token that changes while the join is on the wire reaches the server once the join lands (the
 * server has the one the join carried).
 */
import * as Outbound from "./outbound.js"
import type { ChannelShell } from "./shell.js"

/** The machine asked for the token of join attempt `attempt`: a new fetch, with the next ticket. */
export const want = (self: ChannelShell<any>, attempt: number): void => {
  self.tokenAttempt = attempt
  self.tokenWanted = ++self.tokenFetches
}

/** The token fetch `ticket` brought `token`: the join goes on with it if it is the latest fetch. */
export const fetched = (self: ChannelShell<any>, ticket: number, token: string | undefined): void => {
  if (ticket !== self.tokenFetches) return
  self.token = token
  self.dispatchSync({ _tag: "TokenReady", attempt: self.tokenAttempt })
}

/** The source's token changed: a joined channel tells the server now, a joining one once joined. */
export const changed = (self: ChannelShell<any>): void => {
  if (self.machine.state._tag === "Joined") send(self)
  else self.tokenChanged = true
}

/** The join landed: the server gets a token that changed while it was on the wire. */
export const joined = (self: ChannelShell<any>): void => {
  if (!self.tokenChanged) return
  self.tokenChanged = false
  send(self)
}

/**
 * Tells the server of a joined channel the source's token, when it is not the one the server has:
 * the source's token now, not the change's (a change seen late never sends an older token again).
 * The server never replies.
 */
const send = (self: ChannelShell<any>): void => {
  const joinRef = self.joinRef
  if (joinRef === null) return
  const token = self.currentToken()
  if (token === self.tokenSent) return
  self.tokenSent = token
  const transport = self.deps.transport
  transport.unsafePush(
    Outbound.message(self.topic, joinRef, transport.makeRef(), "access_token", Outbound.accessTokenPayload(token))
  )
}
