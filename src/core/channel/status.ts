/**
 * The public status a channel shows for the state machine's status (`state.ts`), built with the
 * edition's constructors (its `ChannelStatus` tagged enum, durations in its `Duration`).
 */
import type * as State from "./state.js"

/** How an edition builds each status (a status it builds once may be returned every time). */
export interface StatusConstructors<S> {
  readonly idle: () => S
  readonly joining: (attempt: number) => S
  /** `downtimeMillis`: how long the channel was without a join (`undefined`: a first join). */
  readonly subscribed: (downtimeMillis: number | undefined) => S
  readonly errored: (reason: string) => S
  readonly timedOut: (timeoutMillis: number) => S
  readonly rejoining: (attempt: number, delayMillis: number) => S
  readonly closed: (reason: string) => S
}

/**
 * `make` with the statuses every subscribe goes through (`Idle`, the first `Joining`, a first
 * `Subscribed`) built once: they are immutable values, and building one costs (a tagged enum's
 * constructor; in Effect 4 a Proxy and an object spread).
 */
export const buildingCommonOnce = <S>(make: StatusConstructors<S>): StatusConstructors<S> => {
  const idle = make.idle()
  const firstJoining = make.joining(0)
  const firstSubscribed = make.subscribed(undefined)
  return {
    ...make,
    idle: () => idle,
    joining: (attempt) => attempt === 0 ? firstJoining : make.joining(attempt),
    subscribed: (downtimeMillis) => downtimeMillis === undefined ? firstSubscribed : make.subscribed(downtimeMillis)
  }
}

/** The public status of `status` (`downtimeMillis`: since the join was lost, on a rejoin). */
export const toStatus = <S>(
  status: State.Status,
  downtimeMillis: number | undefined,
  make: StatusConstructors<S>
): S => {
  switch (status._tag) {
    case "Idle":
      return make.idle()
    case "Joining":
      return make.joining(status.attempt)
    case "Subscribed":
      return make.subscribed(downtimeMillis)
    case "Errored":
      return make.errored(status.reason)
    case "TimedOut":
      return make.timedOut(status.timeoutMillis)
    case "Rejoining":
      return make.rejoining(status.attempt, status.delayMillis)
    case "Closed":
      return make.closed(status.reason)
  }
}
