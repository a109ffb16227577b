/** `@supabase/realtime-js` 2.109 over `ws`, the way its README sets it up on Node 20. */
import { type RealtimeChannel, RealtimeClient, type WebSocketLikeConstructor } from "@supabase/realtime-js"
import WebSocket from "ws"
import {
  BROADCAST_EVENT,
  channelConfig,
  fanInChannel,
  floodMetrics,
  type FloodName,
  heapSnapshot,
  INBOUND_CHANNEL,
  latencyMetrics,
  mark,
  measuredPerTopic,
  memoryChannel,
  memoryMetrics,
  OrderCheck,
  payloadOf,
  profileStart,
  profileStop,
  ready,
  RTT_CHANNEL,
  type RunResult,
  type ScenarioName,
  type SeqPayload,
  settledMemory,
  sizes,
  subscribeChannel,
  subscribeWarmup,
  warmupChannel,
  warmupPerTopic
} from "../shared.js"

interface BroadcastMessage {
  readonly event: string
  readonly payload: SeqPayload
}

const connect = async (url: string): Promise<RealtimeClient> => {
  const client = new RealtimeClient(url, {
    transport: WebSocket as unknown as WebSocketLikeConstructor,
    params: { apikey: "anon" },
    vsn: "2.0.0"
  })
  client.connect()
  while (!client.isConnected()) await new Promise((resolve) => setTimeout(resolve, 2))
  return client
}

const subscribed = (channel: RealtimeChannel): Promise<void> =>
  new Promise((resolve, reject) => {
    channel.subscribe((status, error) => {
      if (status === "SUBSCRIBED") resolve()
      else if (status !== "CLOSED") reject(new Error(`${channel.topic}: ${status} ${error?.message ?? ""}`))
    })
  })

const close = async (client: RealtimeClient) => {
  await client.removeAllChannels()
  await client.disconnect()
}

const flood = async (url: string, flood: FloodName, names: ReadonlyArray<string>) => {
  const client = await connect(url)
  const checks = names.map(() => new OrderCheck())
  const warmTotal = names.length * warmupPerTopic(flood)
  const measured = names.length * measuredPerTopic(flood)
  let seen = 0
  let warmed!: () => void
  let finish!: () => void
  const warm = new Promise<void>((resolve) => warmed = resolve)
  const done = new Promise<void>((resolve) => finish = resolve)
  await Promise.all(names.map((name, i) => {
    const check = checks[i]!
    const channel = client.channel(name, { config: channelConfig })
    channel.on("broadcast", { event: "*" }, (message: BroadcastMessage) => {
      check.see(message.payload.seq)
      if (++seen === warmTotal) warmed()
      if (seen === warmTotal + measured) finish()
    })
    return subscribed(channel)
  }))
  if (warmTotal > 0) {
    ready(flood, "warmup")
    await warm
  }
  const start = mark()
  ready(flood, "measure")
  await done
  const metrics = floodMetrics(start, measured)
  await close(client)
  const errors = checks.reduce((n, c) => n + c.errors, 0)
  return { valid: errors === 0, detail: errors === 0 ? undefined : `${errors} out of order`, metrics }
}

export const run = async (scenario: ScenarioName, url: string): Promise<RunResult> => {
  switch (scenario) {
    case "inbound":
      return flood(url, "inbound", [INBOUND_CHANNEL])
    case "inbound-binary":
      return flood(url, "inbound-binary", [INBOUND_CHANNEL])
    case "fan-in":
      return flood(url, "fan-in", Array.from({ length: sizes.fanInChannels }, (_, i) => fanInChannel(i)))
    case "subscribe": {
      const client = await connect(url)
      await Promise.all(subscribeWarmup().map((name) => subscribed(client.channel(name, { config: channelConfig }))))
      profileStart()
      const t0 = performance.now()
      const times = await Promise.all(
        Array.from(
          { length: sizes.subscribe },
          (_, i) =>
            subscribed(client.channel(subscribeChannel(i), { config: channelConfig })).then(() =>
              performance.now() - t0
            )
        )
      )
      const totalMs = performance.now() - t0
      profileStop("subscribe")
      await close(client)
      return { valid: times.length === sizes.subscribe, metrics: { totalMs, ...latencyMetrics(times) } }
    }
    case "rtt": {
      const client = await connect(url)
      const channel = client.channel(RTT_CHANNEL, { config: channelConfig })
      let waiting = -1
      let echoed: (() => void) | undefined
      let echoAt = 0
      channel.on("broadcast", { event: "*" }, (message: BroadcastMessage) => {
        if (message.payload.seq === waiting) {
          echoAt = performance.now()
          echoed?.()
        }
      })
      await subscribed(channel)
      const samples: Array<number> = []
      profileStart()
      let failures = 0
      for (let i = 0; i < sizes.rttWarmup + sizes.rtt; i++) {
        const echo = new Promise<void>((resolve) => echoed = resolve)
        waiting = i
        const t0 = performance.now()
        const status = await channel.send({ type: "broadcast", event: BROADCAST_EVENT, payload: payloadOf(i) })
        if (status !== "ok") failures++
        await echo
        if (i >= sizes.rttWarmup) samples.push(echoAt - t0)
      }
      profileStop("rtt")
      await close(client)
      return {
        valid: failures === 0 && samples.length === sizes.rtt,
        detail: failures === 0 ? undefined : `${failures} sends not ok`,
        metrics: latencyMetrics(samples)
      }
    }
    case "memory": {
      const client = await connect(url)
      let received = 0
      const joinAll = (names: ReadonlyArray<string>) =>
        Promise.all(names.map((name) => {
          const channel = client.channel(name, { config: channelConfig })
          channel.on("broadcast", { event: "*" }, () => received++)
          return subscribed(channel)
        }))
      await joinAll(Array.from({ length: sizes.memoryWarmup }, (_, i) => warmupChannel(i)))
      const before = await settledMemory()
      await joinAll(Array.from({ length: sizes.memory }, (_, i) => memoryChannel(i)))
      const after = await settledMemory()
      await heapSnapshot("realtime-js")
      const valid = client.getChannels().length === sizes.memory + sizes.memoryWarmup
      await close(client)
      return { valid, metrics: memoryMetrics(before, after, sizes.memory) }
    }
  }
}
