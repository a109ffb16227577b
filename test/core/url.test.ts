/**
 * The Realtime URL of the core (`src/core/url.ts`), tested once for both editions: the forms a user
 * has at hand become the socket and HTTP bases; what is refused is said without quoting the input (a
 * malformed URL may hold the key). Each edition's Transport tests check its `connectionUrl` wrapper.
 */
import { describe, expect, it } from "vitest"
import * as Url from "../../src/core/url.js"

const endpoint = (input: string): Url.Endpoint => {
  const result = Url.parseEndpoint(input)
  if (!result.ok) throw new Error(`expected an endpoint, got ${result.error}`)
  return result.value
}

const refusal = (input: string): string => {
  const result = Url.parseEndpoint(input)
  if (result.ok) throw new Error(`expected a refusal, got ${JSON.stringify(result.value)}`)
  return result.error
}

describe("core/url parseEndpoint", () => {
  it("turns a Supabase project URL into the Realtime endpoint", () => {
    expect(endpoint("https://abcd.supabase.co")).toEqual({
      socket: "wss://abcd.supabase.co/realtime/v1",
      broadcast: "https://abcd.supabase.co/realtime/v1/api/broadcast",
      display: "wss://abcd.supabase.co/realtime/v1"
    })
    expect(endpoint("http://127.0.0.1:54321/").socket).toBe("ws://127.0.0.1:54321/realtime/v1")
  })

  it("takes a socket endpoint with or without /websocket; the HTTP API sits beside a /socket mount", () => {
    expect(endpoint("wss://abcd.supabase.co/realtime/v1/websocket").socket).toBe("wss://abcd.supabase.co/realtime/v1")
    expect(endpoint("ws://localhost:4000/socket/")).toEqual({
      socket: "ws://localhost:4000/socket",
      broadcast: "http://localhost:4000/api/broadcast",
      display: "ws://localhost:4000/socket"
    })
  })

  it("refuses bad URLs, never echoing a query string", () => {
    expect(refusal("not a url")).toMatch(/^invalid Realtime URL/)
    const query = refusal("wss://x.supabase.co/realtime/v1?apikey=SECRET")
    expect(query).toContain("query string")
    expect(query).not.toContain("SECRET")
    expect(refusal("ftp://x")).toContain("unsupported Realtime URL scheme 'ftp:'")
    expect(refusal("")).toContain("empty")
  })

  it("never echoes a malformed URL (it may hold the key), and refuses credentials in it", () => {
    for (
      const url of [
        "https://abc.supabase.co apikey=SECRET",
        "wss//abc.supabase.co/realtime/v1/SECRET",
        "SECRET",
        "wss://user:SECRET@abc.supabase.co/realtime/v1",
        "SECRET://abc.supabase.co"
      ]
    ) {
      const error = refusal(url)
      expect(error, url).not.toContain("SECRET")
      expect(error, url).not.toContain("abc.supabase.co")
    }
    expect(refusal("https://abc.supabase.co apikey=SECRET")).toContain("whitespace")
    expect(refusal("wss://user:SECRET@abc.supabase.co/realtime/v1")).toContain("credentials")
  })
})
