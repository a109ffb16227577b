/**
 * HS256/384/512 JWTs for the test server: signing for tests, and verification with the exact
 * outcomes (and texts) of Realtime's `JwtVerification` + `ChannelsAuthorization`.
 */
import * as Crypto from "node:crypto"
import { isRecord } from "../guards.js"

/** A token's claims. */
export type Claims = Readonly<Record<string, unknown>>

/** Why a token was refused. */
export type VerifyError =
  | { readonly _tag: "Malformed" }
  | { readonly _tag: "Signature" }
  | { readonly _tag: "Signer"; readonly kid: string | undefined }
  | { readonly _tag: "InvalidExp" }
  | { readonly _tag: "Expired"; readonly seconds: number }
  | { readonly _tag: "MissingClaims" }

const algorithms: Record<string, string> = { HS256: "sha256", HS384: "sha384", HS512: "sha512" }

const base64url = (input: string | Uint8Array): string => Buffer.from(input).toString("base64url")

const BASE64URL = /^[A-Za-z0-9_-]*$/

const decodeJson = (part: string): unknown => {
  if (!BASE64URL.test(part)) return undefined
  try {
    return JSON.parse(Buffer.from(part, "base64url").toString("utf8"))
  } catch {
    return undefined
  }
}

/** Signs `claims` (undefined values dropped) with HMAC. */
export const sign = (
  claims: Readonly<Record<string, unknown>>,
  secret: string,
  alg: "HS256" | "HS384" | "HS512" = "HS256"
): string => {
  const body: Record<string, unknown> = {}
  for (const key of Object.keys(claims)) {
    if (claims[key] !== undefined) body[key] = claims[key]
  }
  const input = `${base64url(JSON.stringify({ alg, typ: "JWT" }))}.${base64url(JSON.stringify(body))}`
  const signature = Crypto.createHmac(algorithms[alg]!, secret).update(input).digest("base64url")
  return `${input}.${signature}`
}

/** The claims of a token without verifying it, or `undefined` when it is not a JWT. */
export const peek = (token: unknown): Claims | undefined => {
  if (typeof token !== "string") return undefined
  const parts = token.split(".")
  if (parts.length !== 3) return undefined
  const claims = decodeJson(parts[1]!)
  return isRecord(claims) ? claims : undefined
}

/**
 * Verifies `token` against `secret` at `nowMillis`, in the server's order: structure, signer,
 * signature, `exp` (when present), then the `role` and `exp` claims.
 */
export const verify = (
  token: unknown,
  secret: string,
  nowMillis: number
): { readonly _tag: "Ok"; readonly claims: Claims } | VerifyError => {
  if (typeof token !== "string") return { _tag: "Malformed" }
  const parts = token.split(".")
  if (parts.length !== 3) return { _tag: "Malformed" }
  const header = decodeJson(parts[0]!)
  const claims = decodeJson(parts[1]!)
  if (!isRecord(header) || !isRecord(claims) || !BASE64URL.test(parts[2]!)) return { _tag: "Malformed" }
  const alg = typeof header.alg === "string" ? algorithms[header.alg] : undefined
  if (alg === undefined) {
    return { _tag: "Signer", kid: typeof header.kid === "string" ? header.kid : undefined }
  }
  const expected = Crypto.createHmac(alg, secret).update(`${parts[0]}.${parts[1]}`).digest()
  const actual = Buffer.from(parts[2]!, "base64url")
  if (actual.length !== expected.length || !Crypto.timingSafeEqual(actual, expected)) return { _tag: "Signature" }
  if ("exp" in claims) {
    const exp = claims.exp
    if (typeof exp !== "number" || !Number.isFinite(exp)) return { _tag: "InvalidExp" }
    const now = Math.floor(nowMillis / 1000)
    if (!(exp > now)) return { _tag: "Expired", seconds: Math.floor(now - exp) }
  }
  if (claims.role === undefined || claims.role === null || claims.exp === undefined) {
    return { _tag: "MissingClaims" }
  }
  return { _tag: "Ok", claims }
}

/** The server's message for a verification failure (handshake body, `system` message). */
export const message = (error: VerifyError): string => {
  switch (error._tag) {
    case "Malformed":
      return "The token provided is not a valid JWT"
    case "Signature":
      return "Failed to validate JWT signature"
    case "Signer":
      return error.kid === undefined
        ? "Failed to generate JWT signer, check your JWT secret or JWKS configuration"
        : `Failed to generate JWT signer for key ID (kid) "${error.kid}", check your JWT secret or JWKS configuration`
    case "InvalidExp":
      return "Token expiration time is invalid"
    case "Expired":
      return `Token has expired ${error.seconds} seconds ago`
    case "MissingClaims":
      return "Fields `role` and `exp` are required in JWT"
  }
}

/** The join error `reason`: `"<Code>: <message>"`. */
export const joinReason = (error: VerifyError): string => {
  switch (error._tag) {
    case "Malformed":
      return `MalformedJWT: ${message(error)}`
    case "Signature":
      return `JwtSignatureError: ${message(error)}`
    case "Signer":
      return `JwtSignerError: ${message(error)}`
    case "InvalidExp":
    case "Expired":
    case "MissingClaims":
      return `InvalidJWTToken: ${message(error)}`
  }
}

/**
 * The `system` message of a channel shut down after an `access_token` or the periodic token check
 * failed. A bad signature is not one of the server's handled cases: it falls through to
 * `inspect(term)`, i.e. `:signature_error`.
 */
export const shutdownMessage = (error: VerifyError): string =>
  error._tag === "Signature" ? ":signature_error" : message(error)
