/**
 * The raw floor: `ws` + `JSON.parse` + a switch on the event, no protocol machinery (binary: the
 * kind 4 header parsed by hand). What any client over `ws` costs at least.
 */
import WebSocket from "ws"
import {
  BROADCAST_EVENT,
  channelConfig,
  fanInChannel,
  floodMetrics,
  type FloodName,
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
  settledMemory,
  sizes,
  subscribeChannel,
  subscribeWarmup,
  topicOf,
  warmupChannel,
  warmupPerTopic
} from "../shared.js"

interface Broadcast {
  readonly event: string
  readonly payload: unknown
}

class Floor {
  private ref = 0
  private readonly replies = new Map<string, () => void>()
  readonly channels = new Map<string, { joinRef: string; onBroadcast: (b: Broadcast) => void }>()

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        if (data[0] !== 4) return
        const topicEnd = 5 + data[1]!
        const eventEnd = topicEnd + data[2]!
        const metaEnd = eventEnd + data[3]!
        const channel = this.channels.get(data.toString("utf8", 5, topicEnd))
        if (channel === undefined) return
        const event = data.toString("utf8", topicEnd, eventEnd)
        const payload = data[4] === 1 ? JSON.parse(data.toString("utf8", metaEnd)) : data.subarray(metaEnd)
        channel.onBroadcast({ event, payload })
        return
      }
      const message = JSON.parse(data.toString())
      switch (message[3]) {
        case "broadcast": {
          const channel = this.channels.get(message[2])
          if (channel !== undefined) channel.onBroadcast(message[4])
          break
        }
        case "phx_reply": {
          const done = this.replies.get(message[1])
          if (done !== undefined) {
            this.replies.delete(message[1])
            done()
          }
          break
        }
      }
    })
  }

  static open = (url: string): Promise<Floor> =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`${url}/websocket?apikey=anon&vsn=2.0.0`)
      ws.once("open", () => resolve(new Floor(ws)))
      ws.once("error", reject)
    })

  private request(frame: string | Buffer, ref: string): Promise<void> {
    return new Promise((resolve) => {
      this.replies.set(ref, resolve)
      this.ws.send(frame)
    })
  }

  join(name: string, onBroadcast: (b: Broadcast) => void): Promise<void> {
    const ref = String(++this.ref)
    const topic = topicOf(name)
    this.channels.set(topic, { joinRef: ref, onBroadcast })
    return this.request(
      JSON.stringify([ref, ref, topic, "phx_join", { config: { ...channelConfig, private: false } }]),
      ref
    )
  }

  /** A kind 3 user broadcast push, built by hand; resolves on the ack. */
  send(name: string, event: string, payload: unknown): Promise<void> {
    const topic = topicOf(name)
    const joinRef = this.channels.get(topic)!.joinRef
    const ref = String(++this.ref)
    const fields = Buffer.from(joinRef + ref + topic + event)
    const body = Buffer.from(JSON.stringify(payload))
    const header = Buffer.from([3, joinRef.length, ref.length, topic.length, event.length, 0, 1])
    return this.request(Buffer.concat([header, fields, body]), ref)
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.ws.once("close", () => resolve())
      this.ws.close(1000)
    })
  }
}

const flood = async (url: string, flood: FloodName, names: ReadonlyArray<string>) => {
  const floor = await Floor.open(url)
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
    return floor.join(name, (b) => {
      check.see((b.payload as { seq: number }).seq)
      if (++seen === warmTotal) warmed()
      if (seen === warmTotal + measured) finish()
    })
  }))
  if (warmTotal > 0) {
    ready(flood, "warmup")
    await warm
  }
  const start = mark()
  ready(flood, "measure")
  await done
  const metrics = floodMetrics(start, measured)
  await floor.close()
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
      const floor = await Floor.open(url)
      await Promise.all(subscribeWarmup().map((name) => floor.join(name, () => {})))
      profileStart()
      const t0 = performance.now()
      const times = await Promise.all(
        Array.from(
          { length: sizes.subscribe },
          (_, i) => floor.join(subscribeChannel(i), () => {}).then(() => performance.now() - t0)
        )
      )
      const totalMs = performance.now() - t0
      profileStop("subscribe")
      await floor.close()
      return { valid: times.length === sizes.subscribe, metrics: { totalMs, ...latencyMetrics(times) } }
    }
    case "rtt": {
      const floor = await Floor.open(url)
      let waiting = -1
      let echoed: (() => void) | undefined
      let echoAt = 0
      await floor.join(RTT_CHANNEL, (b) => {
        if ((b.payload as { seq: number }).seq === waiting) {
          echoAt = performance.now()
          echoed?.()
        }
      })
      const samples: Array<number> = []
      profileStart()
      for (let i = 0; i < sizes.rttWarmup + sizes.rtt; i++) {
        const echo = new Promise<void>((resolve) => echoed = resolve)
        waiting = i
        const t0 = performance.now()
        await floor.send(RTT_CHANNEL, BROADCAST_EVENT, payloadOf(i))
        await echo
        if (i >= sizes.rttWarmup) samples.push(echoAt - t0)
      }
      profileStop("rtt")
      await floor.close()
      return { valid: samples.length === sizes.rtt, metrics: latencyMetrics(samples) }
    }
    case "memory": {
      const floor = await Floor.open(url)
      let received = 0
      const joinAll = (names: ReadonlyArray<string>) =>
        Promise.all(names.map((name) => floor.join(name, () => received++)))
      await joinAll(Array.from({ length: sizes.memoryWarmup }, (_, i) => warmupChannel(i)))
      const before = await settledMemory()
      await joinAll(Array.from({ length: sizes.memory }, (_, i) => memoryChannel(i)))
      const after = await settledMemory()
      await floor.close()
      return {
        valid: floor.channels.size === sizes.memory + sizes.memoryWarmup,
        metrics: memoryMetrics(before, after, sizes.memory)
      }
    }
  }
}
