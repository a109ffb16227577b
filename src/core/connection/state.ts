/**
 * The plain-data part of the state a transport's modules share (each edition adds its Effect
 * parts): the routes, the requests waiting for a reply, the buffer of pushes made while
 * disconnected, the current socket and what it said, the heartbeat in flight.
 */
import type * as Model from "../protocol/model.js"
import * as Result from "../result.js"
import type { SocketFacts } from "./end.js"
import { Refs, Registry, type Request } from "./requests.js"

/**
 * The shared state over the edition's WebSocket `Ws`, request `R` (completed with `O`) and buffered
 * push `B`; a new one is not connected, nothing waiting.
 */
export class Shared<Ws, R extends Request<O>, O, B> {
  /** The handler of each topic's inbound messages (one a topic). */
  readonly routes = new Map<string, (message: Model.Message) => void>()
  readonly pending = new Registry<R, O>()
  /** The pushes made while disconnected, written in order on the next open. */
  readonly buffer: Array<B> = []
  readonly refs = new Refs()
  /**
   * The current WebSocket. Writes go straight to it when it is OPEN (a synchronous `send`), never
   * through a `Socket` writer, whose latch would park a write made in the instant between the
   * socket closing and the loop noticing it.
   */
  ws: Ws | undefined = undefined
  /** Connected: pushes are written at once (unless the buffer is being flushed). */
  open = false
  flushing = false
  /**
   * What the current socket said when it ended: its close code and reason, its error, and the HTTP
   * answer to a refused upgrade where the WebSocket implementation exposes it (ours for Node and the
   * fake socket do; browsers never do).
   */
  ended: SocketFacts = {}
  /** The ref of the heartbeat waiting for its reply. */
  heartbeatRef: string | undefined = undefined
}

/**
 * Routes the inbound messages of `topic` to `handler` until the returned function is called; an
 * error (the detail of an invalid argument) when the topic has a route already.
 */
export const addRoute = (
  routes: Map<string, (message: Model.Message) => void>,
  topic: string,
  handler: (message: Model.Message) => void
): Result.Result<() => void, string> => {
  if (routes.has(topic)) return Result.err(`topic '${topic}' already has a route on this socket`)
  routes.set(topic, handler)
  return Result.ok(() => {
    if (routes.get(topic) === handler) routes.delete(topic)
  })
}
