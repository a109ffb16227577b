/**
 * The transport's options, checked: the URL of a connection and the settings the loop runs with.
 * Errors are the detail of an invalid-argument error.
 */
import * as Result from "../result.js"
import * as Url from "../url.js"

/** The default largest inbound frame: 8 MiB (the server's own limits are a few MB). */
export const DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024

/** The options that make the URL (each edition's `Transport.Options`, the key unwrapped). */
export interface UrlOptions {
  readonly url: string
  readonly apiKey: unknown
  readonly vsn?: string | undefined
  readonly logLevel?: string | undefined
  readonly params?: Readonly<Record<string, string>> | undefined
}

/**
 * Builds the URL of one connection: `<endpoint>/websocket?apikey=…[&params][&log_level=…]&vsn=…`.
 */
export const connectionUrl = (options: UrlOptions): Result.Result<string, string> => {
  const endpoint = Url.parseEndpoint(options.url)
  if (!endpoint.ok) return endpoint
  const apiKey = options.apiKey
  if (typeof apiKey !== "string" || apiKey.trim() === "") return Result.err("apiKey must not be empty or blank")
  const query = new URLSearchParams()
  query.set("apikey", apiKey)
  for (const [key, value] of Object.entries(options.params ?? {})) query.set(key, value)
  if (options.logLevel) query.set("log_level", options.logLevel)
  query.set("vsn", options.vsn ?? "2.0.0")
  return Result.ok(`${endpoint.value.socket}/websocket?${query.toString()}`)
}

/** What the loop runs with, checked. */
export interface Settings {
  readonly endpoint: Url.Endpoint
  readonly url: string
  readonly vsn: "1.0.0" | "2.0.0"
  readonly bufferSize: number
  readonly maxFrameBytes: number
}

/** Checks the options, in order: the URL, the key, `vsn`, `bufferSize`, `maxFrameBytes`. */
export const settings = (
  options: UrlOptions & { readonly bufferSize?: number | undefined; readonly maxFrameBytes?: number | undefined }
): Result.Result<Settings, string> => {
  const endpoint = Url.parseEndpoint(options.url)
  if (!endpoint.ok) return endpoint
  const url = connectionUrl(options)
  if (!url.ok) return url
  const vsn = options.vsn ?? "2.0.0"
  if (vsn !== "1.0.0" && vsn !== "2.0.0") return Result.err(`unsupported protocol version '${String(vsn)}'`)
  const bufferSize = options.bufferSize ?? 1024
  if (!Number.isInteger(bufferSize) || bufferSize < 0) {
    return Result.err(`bufferSize must be a non-negative integer, got ${bufferSize}`)
  }
  const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
  if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes <= 0) {
    return Result.err(`maxFrameBytes must be a positive integer, got ${maxFrameBytes}`)
  }
  return Result.ok({ endpoint: endpoint.value, url: url.value, vsn, bufferSize, maxFrameBytes })
}
