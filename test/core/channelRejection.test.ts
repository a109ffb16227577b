/**
 * How the core reads a join's error reply (`src/core/channel/config.ts`), tested once for both
 * editions: every join error string Realtime sends gives its code (the part before `": "`, or
 * `"Unknown"`), the whole reason, and whether the token expired (a fresh token may let the join pass).
 * Each edition's `RealtimeError.joinRejected` turns this into `JoinRejected` or `TokenExpired`.
 */
import { describe, expect, it } from "vitest"
import * as ChannelConfig from "../../src/core/channel/config.js"

describe("core/channel/config rejection", () => {
  it("reads every join error string of the server: its code, its reason, whether the token expired", () => {
    const cases: ReadonlyArray<readonly [reason: string, code: string, expired: boolean]> = [
      ["TopicNameRequired: You must provide a topic name", "TopicNameRequired", false],
      ["InvalidJWTToken: Token has expired 12 seconds ago", "InvalidJWTToken", true],
      ["InvalidJWTToken: Fields `role` and `exp` are required in JWT", "InvalidJWTToken", false],
      ["InvalidJWTToken: Token expiration time is invalid", "InvalidJWTToken", false],
      ["MalformedJWT: The token provided is not a valid JWT", "MalformedJWT", false],
      ["JwtSignatureError: Failed to validate JWT signature", "JwtSignatureError", false],
      [
        "JwtSignerError: Failed to generate JWT signer, check your JWT secret or JWKS configuration",
        "JwtSignerError",
        false
      ],
      ["Unauthorized: You do not have permissions to read from this Channel topic: x", "Unauthorized", false],
      ["PrivateOnly: This project only allows private channels", "PrivateOnly", false],
      ["ChannelRateLimitReached: Too many channels", "ChannelRateLimitReached", false],
      ["ConnectionRateLimitReached: Too many connected users", "ConnectionRateLimitReached", false],
      ["ClientJoinRateLimitReached: Too many joins per second", "ClientJoinRateLimitReached", false],
      ["TenantNotFound: Tenant with the given ID does not exist", "TenantNotFound", false],
      ["RealtimeDisabledForTenant: Realtime disabled for this tenant", "RealtimeDisabledForTenant", false],
      ["RealtimeRestarting: Realtime is restarting, please standby", "RealtimeRestarting", false],
      ["IncreaseConnectionPool: Please increase your connection pool size", "IncreaseConnectionPool", false],
      [
        "DatabaseLackOfConnections: Database can't accept more connections, Realtime won't connect",
        "DatabaseLackOfConnections",
        false
      ],
      [
        "UnableToConnectToProject: Realtime was unable to connect to the project database",
        "UnableToConnectToProject",
        false
      ],
      [
        "InitializingProjectConnection: Realtime is initializing the project connection",
        "InitializingProjectConnection",
        false
      ],
      ["UnableToReplayMessages: Replay is not allowed for public channels", "UnableToReplayMessages", false],
      ["UnknownErrorOnChannel: boom", "UnknownErrorOnChannel", false],
      ["Unknown Error on Channel", "Unknown", false],
      ["unmatched topic", "Unknown", false]
    ]
    for (const [reason, code, expired] of cases) {
      expect(ChannelConfig.rejection({ reason }), reason).toEqual({ code, reason, expired })
    }
  })

  it("takes a bare string as the reason, and describes a response without one", () => {
    expect(ChannelConfig.rejection("Unauthorized: no")).toEqual({
      code: "Unauthorized",
      reason: "Unauthorized: no",
      expired: false
    })
    const described = ChannelConfig.rejection({ status: 500 })
    expect(described.code).toBe("Unknown")
    expect(described.reason).toContain("500")
  })
})
