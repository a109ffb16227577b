/**
 * A page on the Effect 4 edition's `./browser` entry, bundled by `build.ts` and driven by
 * `test/browser.test.ts` in headless Chromium. Query: `url` (Realtime endpoint), `apiKey`, `name`
 * (this tab's presence key), `room` (default `browser:room`).
 *
 * It joins the room with presence and one Postgres binding (INSERTs into `todos` with
 * `owner=eq.<name>`), tracks itself, greets everyone who joins, and renders the socket and channel
 * states, the broadcasts, who is present and the changes. The form sends a broadcast over the
 * socket, or with "via HTTP" over the broadcast API (`fetch`).
 */
// effect by module path: through the `effect` barrel, esbuild keeps whole namespaces (~570 KiB
// minified instead of ~275 KiB for this page, with effect 4.1.0)
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { BrowserRealtime } from "../../src/browser/index.js"
import { HttpBroadcast, PostgresChanges, RealtimeChannel, RealtimeClient } from "../../src/index.js"

const query = new URLSearchParams(location.search)
const url = query.get("url") ?? ""
const apiKey = query.get("apiKey") ?? ""
const name = query.get("name") ?? `guest-${Math.random().toString(36).slice(2, 6)}`
const room = query.get("room") ?? "browser:room"
// `reconnect=slow`: an hour between reconnect attempts, so that a quick reconnect can only come
// from the page's network or lifecycle signals
const slowReconnect = query.get("reconnect") === "slow"

const Chat = RealtimeChannel.broadcastEvent("chat", Schema.Struct({ from: Schema.String, text: Schema.String }))
const Member = Schema.Struct({ name: Schema.String })
const Todo = Schema.Struct({ id: Schema.String, title: Schema.String, owner: Schema.String })
const myTodos: PostgresChanges.Binding = {
  event: "INSERT",
  schema: "public",
  table: "todos",
  filter: PostgresChanges.Filter.make().eq("owner", name)
}

// -- rendering ------------------------------------------------------------------------

const byId = (id: string): HTMLElement => document.getElementById(id)!

const show = (id: string, state: string) =>
  Effect.sync(() => {
    const el = byId(id)
    el.textContent = state
    el.dataset["state"] = state
  })

const append = (id: string, text: string, className?: string) =>
  Effect.sync(() => {
    const li = document.createElement("li")
    li.textContent = text
    if (className !== undefined) li.className = className
    byId(id).append(li)
  })

const showPresence = (state: RealtimeChannel.PresenceSnapshot<typeof Member.Type>) =>
  Effect.sync(() => {
    const items = [...state.keys()].sort().map((key) => {
      const li = document.createElement("li")
      li.textContent = key
      li.dataset["key"] = key
      if (key === name) li.className = "self"
      return li
    })
    byId("presence").replaceChildren(...items)
  })

const showError = (cause: Cause.Cause<unknown>) => append("errors", Cause.pretty(cause))

const background = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.catchCause(showError), Effect.forkScoped)

// -- the program ----------------------------------------------------------------------

const program = Effect.gen(function*() {
  byId("room").textContent = room
  byId("name").textContent = name
  const client = yield* RealtimeClient.RealtimeClient
  const http = yield* HttpBroadcast.HttpBroadcast
  yield* background(client.stateChanges.pipe(Stream.runForEach((state) => show("connection", state._tag))))

  const channel = yield* client.channel(room, { presence: { key: name }, postgresChanges: [myTodos] })
  yield* background(channel.statusChanges.pipe(Stream.runForEach((status) => show("status", status._tag))))
  yield* background(
    channel.broadcast(Chat).pipe(
      Stream.runForEach(({ payload }) => append("messages", `${payload.from}: ${payload.text}`))
    )
  )
  yield* background(channel.presence(Member).changes.pipe(Stream.runForEach(showPresence)))
  // say hi to everyone who joins (and to whoever is already there when we join)
  yield* background(
    channel.presence(Member).events.pipe(
      Stream.runForEach((event) =>
        event._tag === "Join" && event.key !== name
          ? channel.send(Chat, { from: name, text: `hi ${event.key}` })
          : Effect.void
      )
    )
  )
  yield* background(
    channel.postgresChanges(myTodos, Todo).pipe(
      Stream.runForEach((change) =>
        change.eventType === "INSERT"
          ? append("changes", `${change.eventType} ${change.table} #${change.new.id}: ${change.new.title}`)
          : Effect.void
      )
    )
  )

  yield* channel.subscribe
  yield* channel.track({ name })

  const form = byId("send") as HTMLFormElement
  const input = byId("text") as HTMLInputElement
  const viaHttp = byId("http") as HTMLInputElement
  // the stream handles events after their dispatch: too late to cancel the submission there
  form.addEventListener("submit", (event) => event.preventDefault())
  yield* background(
    Stream.fromEventListener(form, "submit").pipe(
      Stream.runForEach(() => {
        const payload = { from: name, text: input.value }
        const overHttp = viaHttp.checked
        input.value = ""
        const send = overHttp
          ? http.send(room, Chat.event, Schema.encodeSync(Chat.schema)(payload))
          : channel.send(Chat, payload)
        return send.pipe(
          Effect.andThen(append("messages", `→ ${payload.text} (${overHttp ? "http" : "websocket"})`, "sent")),
          Effect.catchCause(showError)
        )
      })
    )
  )
  return yield* Effect.never
})

Effect.runFork(
  program.pipe(
    Effect.scoped,
    Effect.provide(BrowserRealtime.layer({
      url,
      apiKey,
      params: { tab: name },
      ...(slowReconnect ? { reconnect: { reconnect: Schedule.spaced("1 hour") } } : {})
    })),
    Effect.catchCause(showError)
  )
)
