/**
 * The access token from a supabase-js auth session. The client takes its token from
 * `auth.getSession()` (before the first join, on every heartbeat and before every rejoin), and
 * `auth.onAuthStateChange` pushes a refreshed token at once (`client.setAuth`), and clears it on
 * sign-out. supabase-js is not a dependency here: `SupabaseAuth` is the slice of its
 * `SupabaseClient["auth"]` this uses, so `supabase.auth` fits it as is; the embedded server's fake
 * auth below stands in for it.
 * Run: npm exec -- tsx examples/supabase-auth.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Option, Queue, Stream } from "effect"
import type { RealtimeClient } from "../src/index.js"
import type { RealtimeServer } from "../src/testing/index.js"
import { connect, Endpoint, EndpointLive } from "./support.js"

/** A supabase-js `Session`, the part used here. */
interface Session {
  readonly access_token: string
}

/** The part of supabase-js's `supabase.auth` used here (same names and shapes). */
interface SupabaseAuth {
  getSession(): Promise<{ data: { session: Session | null }; error: { message: string } | null }>
  onAuthStateChange(
    callback: (event: string, session: Session | null) => void
  ): { data: { subscription: { unsubscribe(): void } } }
}

/** The session's token for the client's `accessToken` option: `null` when signed out (the apikey authorizes). */
const sessionToken = (auth: SupabaseAuth): Effect.Effect<string | null> =>
  Effect.tryPromise(() => auth.getSession()).pipe(
    Effect.flatMap(({ data, error }) =>
      error === null ? Effect.succeed(data.session?.access_token ?? null) : Effect.fail(error.message)
    ),
    // a failed lookup keeps the client's last good token (the client logs it)
    Effect.orDie
  )

/** supabase-js's auth events as a Stream of tokens (unsubscribed when the stream ends). */
const tokenChanges = (auth: SupabaseAuth): Stream.Stream<string | null> =>
  Stream.callback<string | null>((queue) =>
    Effect.acquireRelease(
      Effect.sync(() =>
        auth.onAuthStateChange((event, session) => {
          if (event === "INITIAL_SESSION") return
          Queue.offerUnsafe(queue, session?.access_token ?? null)
        })
      ),
      ({ data }) => Effect.sync(() => data.subscription.unsubscribe())
    )
  )

/** Keeps the client's token in step with the session, for the scope. */
const followAuth = (client: RealtimeClient.RealtimeClient, auth: SupabaseAuth) =>
  tokenChanges(auth).pipe(Stream.runForEach((token) => client.setAuth(token)), Effect.forkScoped)

// ----- a fake `supabase.auth` over the embedded server's token signer -----

const fakeAuth = (server: RealtimeServer.Server, user: string) => {
  let session: Session | null = null
  let issued = 0
  const listeners = new Set<(event: string, session: Session | null) => void>()
  const issue = () =>
    Effect.runPromise(server.makeToken({ role: "authenticated", claims: { sub: user, session: ++issued } }))
  const notify = (event: string) => listeners.forEach((listener) => listener(event, session))
  const auth: SupabaseAuth = {
    getSession: async () => ({ data: { session }, error: null }),
    onAuthStateChange: (callback) => {
      listeners.add(callback)
      callback("INITIAL_SESSION", session)
      return { data: { subscription: { unsubscribe: () => listeners.delete(callback) } } }
    }
  }
  return {
    auth,
    signIn: Effect.promise(async () => {
      session = { access_token: await issue() }
      notify("SIGNED_IN")
    }),
    refresh: Effect.promise(async () => {
      session = { access_token: await issue() }
      notify("TOKEN_REFRESHED")
    }),
    signOut: Effect.sync(() => {
      session = null
      notify("SIGNED_OUT")
    })
  }
}

const program = Effect.gen(function*() {
  const { server } = yield* Endpoint
  if (Option.isNone(server)) return yield* Effect.log("this example signs users in on the embedded server only")
  const { auth, refresh, signIn, signOut } = fakeAuth(server.value, "ada")
  yield* signIn

  const client = yield* connect({ accessToken: sessionToken(auth) })
  yield* followAuth(client, auth)

  // a private channel: the server authorizes the join with the session's JWT
  const account = yield* client.channel("account:ada", { private: true })
  yield* account.subscribe
  const joined = yield* server.value.waitUntil((s) => s.subscribers("account:ada").length === 1)
  const claims = joined.subscribers("account:ada")[0]!.claims
  yield* Effect.log(`joined private channel as ${claims.sub} with session token #${claims.session}`)

  // supabase-js refreshes the session: the new token reaches the joined channel at once
  yield* refresh
  yield* server.value.waitUntil((s) => s.subscribers("account:ada")[0]?.claims.session === 2)
  yield* Effect.log("refreshed token pushed to the channel: the server now holds session token #2")

  // sign-out clears the client's token: later joins carry none and the apikey authorizes
  yield* signOut
  yield* client.accessToken.changes.pipe(Stream.filter(Option.isNone), Stream.take(1), Stream.runDrain)
  yield* Effect.log("signed out: the client's token is cleared")
}).pipe(Effect.scoped, Effect.timeout("15 seconds"), Effect.provide(EndpointLive))

NodeRuntime.runMain(program)
