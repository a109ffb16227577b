/**
 * The test server's keys: the local stack's JWT secret, test tokens, the default anon and
 * service-role keys, and the opaque `sb_…` keys the server resolves to a JWT of their role.
 */
import * as Jwt from "./jwt.js"

/** The JWT secret of the Supabase CLI's local stack, used when no `jwtSecret` is given. */
export const defaultJwtSecret = "super-secret-jwt-token-with-at-least-32-characters-long"

/**
 * Claims of a test token. `role` and `exp` (seconds since the epoch) are what the server requires;
 * leave them out to test the `Fields \`role\` and \`exp\` are required in JWT` path.
 */
export interface TokenClaims {
  readonly role?: string | undefined
  readonly exp?: number | undefined
  readonly sub?: string | undefined
  readonly [claim: string]: unknown
}

/** Signs a test JWT (HS256) with `secret` (default {@link defaultJwtSecret}). */
export const signToken = (claims: TokenClaims, secret: string = defaultJwtSecret): string => Jwt.sign(claims, secret)

/** 2100-01-01, in seconds: the expiry of the default keys. */
const YEAR_2100 = 4_102_444_800

/** The anon key of a secret: `role: "anon"`, expiring in 2100. */
export const anonKey = (secret: string): string =>
  secret === defaultJwtSecret
    ? defaultApiKey
    : signToken({ iss: "supabase-demo", role: "anon", exp: YEAR_2100 }, secret)

/** The service-role key of a secret: `role: "service_role"`, expiring in 2100. */
export const serviceRoleKey = (secret: string): string =>
  secret === defaultJwtSecret
    ? defaultServiceRoleKey
    : signToken({ iss: "supabase-demo", role: "service_role", exp: YEAR_2100 }, secret)

/** The default anon key: `role: "anon"`, expiring in 2100, signed with {@link defaultJwtSecret}. */
export const defaultApiKey: string = signToken({ iss: "supabase-demo", role: "anon", exp: YEAR_2100 })

/** The default service-role key: `role: "service_role"`, expiring in 2100. */
export const defaultServiceRoleKey: string = signToken({
  iss: "supabase-demo",
  role: "service_role",
  exp: YEAR_2100
})

/** An opaque `sb_…` key the server knows becomes a JWT of its role (what the API gateway does). */
export const resolveKey = (
  config: { readonly opaqueKeys: Readonly<Record<string, string>>; readonly jwtSecret: string },
  key: string
): string => {
  const role = config.opaqueKeys[key]
  if (role === undefined) return key
  return Jwt.sign({ role, iss: "supabase", exp: YEAR_2100 }, config.jwtSecret)
}
