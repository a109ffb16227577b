/**
 * The test server as an Effect 4 service: the `Server` of an engine (each operation the engine's,
 * run in `Effect.sync`; `waitFor` over its events), in memory or on a real socket.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientError from "effect/http/HttpClientError"
import type * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { WebSocketServer } from "ws"
import type * as ServerConfig from "../../../../src/core/server/config.js"
import * as Control from "../../../../src/core/server/control.js"
import type * as Engine from "../../../../src/core/server/engine.js"
import * as HttpApi from "../../../../src/core/server/http.js"
import * as Inspect from "../../../../src/core/server/inspect.js"
import * as Listener from "../../../../src/core/server/listener.js"
import type * as ServerModel from "../../../../src/core/server/model.js"
import * as FakeSocket from "../FakeSocket.js"
import type * as RealtimeServer from "../RealtimeServer.js"
import * as Environment from "./environment.js"

const requestBody = (
  request: HttpClientRequest.HttpClientRequest
): Uint8Array | undefined => {
  const body = request.body
  switch (body._tag) {
    case "Empty":
      return new Uint8Array(0)
    case "Uint8Array":
      return body.body
    case "Raw":
      return typeof body.body === "string"
        ? new TextEncoder().encode(body.body)
        : body.body instanceof Uint8Array
        ? body.body
        : undefined
    default:
      return undefined
  }
}

/** An `HttpClient` answered in memory by the engine's HTTP API. */
const httpClient = (engine: Engine.Engine): HttpClient.HttpClient =>
  HttpClient.make((request, url) => {
    const body = requestBody(request)
    if (body === undefined) {
      return Effect.fail(
        new HttpClientError.HttpClientError({
          reason: new HttpClientError.EncodeError({
            request,
            description: "the in-memory RealtimeServer client supports byte and text bodies only"
          })
        })
      )
    }
    return Effect.sync(() =>
      HttpClientResponse.fromWeb(
        request,
        HttpApi.webResponse(HttpApi.handleRequest(engine, {
          method: request.method,
          path: url.pathname + url.search,
          headers: request.headers,
          body
        }))
      )
    )
  })

/** The functions of `operations`, each run in `Effect.sync`. */
type Lifted<T> = {
  readonly [K in keyof T]: T[K] extends (...args: infer A) => infer R ? (...args: A) => Effect.Effect<R> : never
}

/** Each function of `operations` run in `Effect.sync`. */
const lift = <T extends Record<string, (...args: Array<any>) => unknown>>(operations: T): Lifted<T> => {
  const out: Record<string, unknown> = {}
  for (const [key, f] of Object.entries(operations)) {
    out[key] = (...args: Array<unknown>) => Effect.sync(() => f(...args))
  }
  return out as Lifted<T>
}

/** Each thunk of `actions` as an `Effect.sync`. */
const run = <T extends Record<string, () => unknown>>(
  actions: T
): { readonly [K in keyof T]: Effect.Effect<ReturnType<T[K]>> } => {
  const out: Record<string, unknown> = {}
  for (const [key, f] of Object.entries(actions)) out[key] = Effect.sync(f)
  return out as { readonly [K in keyof T]: Effect.Effect<ReturnType<T[K]>> }
}

const build = (
  engine: Engine.Engine,
  pubsub: PubSub.PubSub<ServerModel.ServerEvent>,
  endpoints: Control.Endpoints
): RealtimeServer.Server => {
  const acceptor: FakeSocket.Acceptor = Control.acceptor(engine)
  const waitFor = <A>(f: (state: Inspect.ServerState) => A | undefined): Effect.Effect<A> =>
    Effect.scoped(
      Effect.gen(function*() {
        const subscription = yield* PubSub.subscribe(pubsub)
        while (true) {
          const result = f(Inspect.snapshot(engine))
          if (result !== undefined) return result
          // waits for at least one event, then drains the ones already there
          yield* PubSub.takeAll(subscription)
        }
      })
    )
  return {
    ...endpoints,
    ...Control.keys(engine),
    acceptor,
    webSocketConstructor: FakeSocket.makeConstructor(acceptor),
    webSocketClass: FakeSocket.makeClass(acceptor),
    fetch: HttpApi.fetch(engine),
    httpClient: httpClient(engine),
    ...lift(Control.operations(engine, Environment.toMillis)),
    ...run(Control.actions(engine)),
    lastJoinPayload: (topic) =>
      Effect.sync(() => {
        const last = Control.lastJoinPayload(engine, topic)
        return last === undefined ? Option.none() : Option.some(last.payload)
      }),
    events: Stream.fromPubSub(pubsub),
    waitFor,
    waitUntil: (predicate) => waitFor((state) => predicate(state) ? state : undefined)
  }
}

/** An in-memory server, stopped (every socket closed with 1001) when the scope closes. */
export const make = (
  options: ServerConfig.Options<Duration.Input>
): Effect.Effect<RealtimeServer.Server, never, Scope.Scope> =>
  Effect.map(
    Environment.makeEngine(options),
    ({ engine, pubsub }) => build(engine, pubsub, Control.memoryEndpoints(options.memoryUrl))
  )

/** A server on a real socket, also reachable in memory; `onError`: the error of a listener that cannot bind. */
export const makeListen = <E>(
  options: ServerConfig.ListenOptions<Duration.Input>,
  onError: (host: string, port: number, cause: unknown) => E
): Effect.Effect<RealtimeServer.Server, E, Scope.Scope> =>
  Effect.gen(function*() {
    const { engine, pubsub } = yield* Environment.makeEngine(options)
    const host = options.host ?? "127.0.0.1"
    const port = options.port ?? 0
    const listener = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          Listener.listen(engine, {
            host,
            port,
            webSocketServer: (options) => new WebSocketServer(options)
          }),
        catch: (cause) => onError(host, port, cause)
      }),
      (listener) => Effect.promise(() => listener.close())
    )
    return build(engine, pubsub, Control.listenEndpoints(listener))
  })
