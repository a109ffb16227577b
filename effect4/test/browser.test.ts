/**
 * The Effect 4 edition's `./browser` entry in a real browser: the page of `test/browser/` bundled with esbuild, opened
 * in two tabs of headless Chromium (Debian's `/usr/bin/chromium`, driven by playwright-core)
 * against the in-process Realtime server on 127.0.0.1, with one Node client in the same room.
 * Without chromium the test is skipped, unless `CI` is set: then it fails.
 */
import { Context, Effect, Exit, Fiber, Layer, Schema, Scope, Stream } from "effect"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import type { BrowserContext, Page } from "playwright-core"
import { chromium } from "playwright-core"
import { describe, expect, it } from "vitest"
import * as NodeRealtime from "../src/node/NodeRealtime.js"
import * as RealtimeChannel from "../src/RealtimeChannel.js"
import * as RealtimeClient from "../src/RealtimeClient.js"
import * as RealtimeServer from "../src/testing/RealtimeServer.js"
import { buildPage } from "./browser/build.js"

const chromiumPath = "/usr/bin/chromium"
const hasChromium = Fs.existsSync(chromiumPath)
const skip = !hasChromium && !process.env["CI"]
if (skip) console.warn(`effect4/test/browser.test.ts skipped: ${chromiumPath} is missing (apt-get install chromium)`)
const screenshot = Path.join(Os.tmpdir(), "supabase-realtime-effect4-browser.png")

const room = "browser:room"
const topic = `realtime:${room}`
const Chat = RealtimeChannel.broadcastEvent("chat", Schema.Struct({ from: Schema.String, text: Schema.String }))

/** A static server on 127.0.0.1 for the built page. */
const serve = (dir: string) =>
  new Promise<Http.Server>((resolve, reject) => {
    const types: Record<string, string> = { ".html": "text/html; charset=utf-8", ".js": "text/javascript" }
    const server = Http.createServer((request, response) => {
      const path = new URL(request.url ?? "/", "http://127.0.0.1").pathname
      const file = path === "/" ? "index.html" : path.slice(1)
      if (!["index.html", "page.js"].includes(file)) {
        response.writeHead(404).end()
        return
      }
      response.writeHead(200, { "content-type": types[Path.extname(file)]!, "cache-control": "no-store" })
      response.end(Fs.readFileSync(Path.join(dir, file)))
    })
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve(server))
  })

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

describe("browser", () => {
  it.skipIf(skip)(
    `two Chromium tabs and a Node client share a room: broadcast, presence, HTTP broadcast, a filtered Postgres change; offline, online and resume${
      hasChromium ? "" : ` (${chromiumPath} is missing: apt-get install chromium)`
    }`,
    async () => {
      if (!hasChromium) throw new Error(`${chromiumPath} is missing; CI installs it with apt-get install chromium`)
      const scope = await run(Scope.make())
      let http: Http.Server | undefined
      let browser: BrowserContext | undefined
      const pageErrors: Array<string> = []
      const urls: Array<string> = []
      const temp: Array<string> = []
      try {
        const built = await buildPage()
        temp.push(built.dir)
        http = await serve(built.dir)
        const pageBase = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`
        const server = await run(RealtimeServer.makeListen().pipe(Scope.provide(scope)))

        // the Node client: in the room with presence key "node", collecting every broadcast of the tabs
        const node = await run(
          Layer.buildWithScope(NodeRealtime.layer({ url: server.url, apiKey: server.apiKey }), scope).pipe(
            Effect.map(Context.get(RealtimeClient.RealtimeClient))
          )
        )
        const channel = await run(node.channel(room, { presence: { key: "node" } }).pipe(Scope.provide(scope)))
        const fromBrowsers = await run(
          channel.broadcast(Chat).pipe(
            Stream.map(({ payload }) => `${payload.from}: ${payload.text}`),
            Stream.take(6),
            Stream.runCollect,
            Effect.timeout("30 seconds"),
            Effect.forkIn(scope)
          )
        )
        await run(channel.subscribe.pipe(Scope.provide(scope)))
        await run(channel.track({ name: "node" }))

        const userDataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "realtime-chromium-"))
        temp.push(userDataDir)
        // a fresh profile (playwright passes it as --user-data-dir)
        browser = await chromium.launchPersistentContext(userDataDir, {
          executablePath: chromiumPath,
          viewport: { width: 900, height: 480 },
          args: [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync"
          ]
        })
        const context = browser
        const open = async (name: string): Promise<Page> => {
          const page = await context.newPage()
          page.on("pageerror", (error) => pageErrors.push(`${name}: ${error.message}`))
          page.on("console", (message) => {
            if (message.type() === "error") pageErrors.push(`${name}: ${message.text()}`)
          })
          page.on("request", (request) => urls.push(request.url()))
          page.on("websocket", (ws) => urls.push(ws.url()))
          const query = new URLSearchParams({ url: server.url, apiKey: server.apiKey, name, room, reconnect: "slow" })
          await page.goto(`${pageBase}?${query}`)
          return page
        }
        const [ada, bob] = await Promise.all([open("ada"), open("bob")])
        const shows = (page: Page, selector: string, text: string) =>
          page.locator(selector, { hasText: text }).first().waitFor({ timeout: 30_000 })
        const texts = (page: Page, selector: string) => page.locator(selector).allTextContents()

        // subscribed, the socket open
        for (const page of [ada, bob]) {
          await page.locator("#status[data-state=Subscribed]").waitFor({ timeout: 30_000 })
          await page.locator("#connection[data-state=Open]").waitFor({ timeout: 30_000 })
        }
        // presence: both tabs and the Node client, in each tab and on the server
        for (const page of [ada, bob]) {
          for (const key of ["ada", "bob", "node"]) await shows(page, "#presence li", key)
        }
        const present = await run(server.waitFor((s) => {
          const keys = Object.keys(s.presence(topic)).sort()
          return keys.length === 3 ? keys : undefined
        }))
        expect(present).toEqual(["ada", "bob", "node"])
        expect(await texts(ada, "#presence li")).toEqual(["ada", "bob", "node"])
        expect(await texts(bob, "#presence li")).toEqual(["ada", "bob", "node"])

        // broadcast between the tabs: each greets whoever joins
        await shows(ada, "#messages li", "bob: hi ada")
        await shows(bob, "#messages li", "ada: hi bob")

        // Node → browsers
        await run(channel.send(Chat, { from: "node", text: "hello browsers" }))
        await shows(ada, "#messages li", "node: hello browsers")
        await shows(bob, "#messages li", "node: hello browsers")

        // browsers → Node: typed into the form, over the socket (ada) and over HTTP via fetch (bob)
        await ada.bringToFront() // a background tab gets no animation frames, which clicks wait for
        await ada.fill("#text", "over the socket")
        await ada.click("button[type=submit]")
        await shows(ada, "#messages li.sent", "over the socket (websocket)")
        await bob.bringToFront()
        await bob.fill("#text", "over fetch")
        await bob.check("#http")
        await bob.click("button[type=submit]")
        await shows(bob, "#messages li.sent", "over fetch (http)")
        const got = await run(Fiber.join(fromBrowsers))
        expect([...got].sort()).toEqual([
          "ada: hi bob",
          "ada: hi node",
          "ada: over the socket",
          "bob: hi ada",
          "bob: hi node",
          "bob: over fetch"
        ])
        await shows(bob, "#messages li", "ada: over the socket")
        await shows(ada, "#messages li", "bob: over fetch")

        // a Postgres change per owner: each tab's binding has owner=eq.<name>
        await run(
          server.waitUntil((s) => s.channels.filter((c) => c.topic === topic && c.postgresSubscribed).length === 2)
        )
        const emit = (id: string, owner: string) =>
          run(server.emitChange({ table: "todos", type: "INSERT", record: { id, title: `for ${owner}`, owner } }))
        expect(await emit("1", "ada")).toBe(1)
        expect(await emit("2", "eve")).toBe(0)
        expect(await emit("3", "bob")).toBe(1)
        await shows(ada, "#changes li", "INSERT todos #1: for ada")
        await shows(bob, "#changes li", "INSERT todos #3: for bob")
        expect(await texts(ada, "#changes li")).toEqual(["INSERT todos #1: for ada"])
        expect(await texts(bob, "#changes li")).toEqual(["INSERT todos #3: for bob"])

        // on the wire: one socket per tab, vsn 2.0.0, broadcasts sent as binary (kind 3) frames
        const state = await run(server.state)
        const tabs = state.connections.filter((c) => (c.headers["user-agent"] ?? "").includes("Chrome"))
        expect(tabs.length).toBe(2)
        for (const connection of tabs) {
          expect(connection.vsn).toBe("2.0.0")
          const broadcasts = state.received(connection.id).filter((f) => f.event === "broadcast")
          expect(broadcasts.length).toBeGreaterThanOrEqual(2)
          expect(broadcasts.every((f) => f.binary)).toBe(true)
        }
        // the HTTP broadcast came from the page's origin, through CORS
        expect(state.stats.httpRequests).toBeGreaterThanOrEqual(1)

        // the page's network and lifecycle (both tabs reconnect only once an hour by themselves)
        const cdp = await context.newCDPSession(ada)
        await cdp.send("Network.enable")
        const network = (offline: boolean) =>
          cdp.send("Network.emulateNetworkConditions", {
            offline,
            latency: 0,
            downloadThroughput: -1,
            uploadThroughput: -1
          })
        const adaSocket = async () => {
          const connections = (await run(server.state)).connections
          const id = connections.find((c) => c.open && c.params["tab"] === "ada")?.id
          expect(id).toBeDefined() // else dropConnection would drop every socket
          return id
        }
        const opened = async () => (await run(server.state)).stats.connectionsOpened
        // offline, the socket lost: the tab says Offline and makes no attempt
        await network(true)
        expect(await ada.evaluate(() => navigator.onLine)).toBe(false)
        await run(server.dropConnection({ connection: await adaSocket(), abrupt: true }))
        await ada.locator("#connection[data-state=Offline]").waitFor({ timeout: 30_000 })
        const openedOffline = await opened()
        // the network back: a reconnect at once, not in an hour, and the channel subscribed again
        await network(false)
        await ada.locator("#connection[data-state=Open]").waitFor({ timeout: 30_000 })
        await ada.locator("#status[data-state=Subscribed]").waitFor({ timeout: 30_000 })
        expect(await opened()).toBe(openedOffline + 1)
        // online, the socket lost: Reconnecting for an hour, until the page resumes
        await run(server.dropConnection({ connection: await adaSocket(), abrupt: true }))
        await ada.locator("#connection[data-state=Reconnecting]").waitFor({ timeout: 30_000 })
        // headless Chromium neither hides nor freezes a page (Page.setWebLifecycleState refuses a
        // visible one), so the page's own `resume` event is dispatched as Chrome does after a freeze
        // (a resume ends a backoff only a second or more after the last attempt began)
        await ada.waitForTimeout(1_100)
        await ada.evaluate(() => document.dispatchEvent(new Event("resume")))
        await ada.locator("#connection[data-state=Open]").waitFor({ timeout: 30_000 })
        await ada.locator("#status[data-state=Subscribed]").waitFor({ timeout: 30_000 })

        await ada.bringToFront()
        await ada.screenshot({ path: screenshot, fullPage: true })
        expect(new URL(ada.url()).searchParams.get("name")).toBe("ada") // the form never navigated
        expect(await texts(ada, "#errors li")).toEqual([])
        expect(await texts(bob, "#errors li")).toEqual([])
        expect(pageErrors).toEqual([])
        expect(urls.every((url) => /^(https?|wss?):\/\/127\.0\.0\.1:\d+\//.test(url))).toBe(true)
      } finally {
        await browser?.close()
        http?.closeAllConnections()
        await new Promise((resolve) => http === undefined ? resolve(undefined) : http.close(resolve))
        await run(Scope.close(scope, Exit.void))
        for (const dir of temp) Fs.rmSync(dir, { recursive: true, force: true })
      }
    },
    180_000
  )
})
