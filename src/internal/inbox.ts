/**
 * The queues of a channel's streams, fed synchronously by the socket's read loop, and the
 * batching that decides when their consumers are woken.
 *
 * A stream's `bufferSize` bounds how far its consumer lags, not how many events one I/O turn
 * delivers: events are woken in batches (one per task, or one per I/O turn in a burst), and a
 * consumer cannot run before its batch is flushed. So only the events the consumer has already been
 * offered (queued before the current batch began) count against the bound; a batch always queues
 * whole. A consumer that takes what it is offered before the next batch never loses an event, however
 * small its buffer and however large the batch (a socket read is at most a few MB of frames); one
 * that lags by `bufferSize` offered events loses the newest ones, counted.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

/**
 * The batching state shared by every listener: one object, not module-level variables.
 *
 * - `batch`: the number of the current batch, advanced at each flush. An inbox that sees a new
 *   number knows that everything it holds has been offered to its consumer.
 * - `events`: events offered since the last flush (the current task, or the whole turn of a burst).
 * - `deferred`: the flush waits for the end of the I/O turn (a burst).
 * - `dirty`: listeners with events queued and not yet woken for.
 *
 * @internal
 */
export const batching: {
  batch: number
  events: number
  deferred: boolean
  dirty: Array<BatchedFeed<any>>
} = { batch: 0, events: 0, deferred: false, dirty: [] }

/**
 * A stream's queue: one consumer (the stream that made it), fed synchronously by the read loop.
 * The waiting consumer is resumed directly (one scheduler hop; `Mailbox` takes two, and its
 * `unsafeOffer` schedules the wake-up as a task of its own). Past `capacity` events offered to the
 * consumer and not taken, new events are dropped (`offer` returns false).
 *
 * @internal
 */
export class Inbox<A> {
  private items: Array<A> = []
  private done = false
  private waiter: ((effect: Effect.Effect<void>) => void) | undefined = undefined
  // how many of `items` the consumer has been offered (queued before the current batch)
  private offered = 0
  private batch = -1
  constructor(private readonly capacity: number) {}
  /** Queues `value` (false: the consumer lags by `capacity` events, or the inbox ended) and wakes the consumer if `wake`. */
  offer(value: A, wake: boolean): boolean {
    if (this.done) return false
    if (this.batch !== batching.batch) {
      this.batch = batching.batch
      this.offered = this.items.length
    }
    if (this.offered >= this.capacity) return false
    this.items.push(value)
    if (wake) this.wake()
    return true
  }
  wake(): void {
    const waiter = this.waiter
    if (waiter === undefined) return
    this.waiter = undefined
    waiter(Effect.void)
  }
  /** The stream ends once what is queued has been taken. */
  end(): void {
    this.done = true
    this.wake()
  }
  private readonly wait = Effect.async<void>((resume) => {
    this.waiter = resume
    return Effect.sync(() => {
      this.waiter = undefined
    })
  })
  /** Everything queued, waiting for at least one; `None` once ended and drained. */
  readonly pull: Effect.Effect<Chunk.Chunk<A>, Option.Option<never>> = Effect.suspend(() => {
    if (this.items.length > 0) {
      const items = this.items
      this.items = []
      this.offered = 0
      return Effect.succeed(Chunk.unsafeFromArray(items))
    }
    return this.done ? Effect.fail(Option.none()) : Effect.zipRight(this.wait, this.pull)
  })
}

/**
 * A stream's inbox, woken in batches. The first event of a task (a socket read) wakes its stream
 * at once: a lone event (an echo, a reply-time broadcast) arrives with no added latency and ahead of
 * what the rest of the read resumes. The next ones wake it at the end of the task (a microtask), and
 * a burst (`BURST` events or more) at the end of the I/O turn, so that with many channels each
 * stream wakes once per turn rather than once per socket read. One queue: order is kept.
 *
 * @internal
 */
export class BatchedFeed<A> {
  private dirty = false
  constructor(readonly inbox: Inbox<A>, private readonly onDropped: (count: number) => void) {}
  unsafeOffer(value: A): void {
    if (batching.events++ === 0) queueMicrotask(endOfTask)
    const now = batching.events === 1 && !batching.deferred && !this.dirty
    if (!this.inbox.offer(value, now)) return this.onDropped(1)
    if (!now && !this.dirty) {
      this.dirty = true
      batching.dirty.push(this)
    }
  }
  flush(): void {
    if (!this.dirty) return
    this.dirty = false
    this.inbox.wake()
  }
  end(): void {
    this.dirty = false
    this.inbox.end()
  }
}

const BURST = 64

const flushAll = () => {
  const listeners = batching.dirty
  batching.dirty = []
  batching.events = 0
  batching.deferred = false
  batching.batch = batching.batch === Number.MAX_SAFE_INTEGER ? 0 : batching.batch + 1
  for (let i = 0; i < listeners.length; i++) listeners[i]!.flush()
}

// the end of the I/O turn where there is one (Node, Bun, Deno); else the microtask is the turn
const runAfterIo: ((f: () => void) => void) | undefined = typeof globalThis.setImmediate === "function"
  ? (f) => {
    globalThis.setImmediate(f)
  }
  : undefined

const endOfTask = () => {
  if (batching.deferred) return
  if (batching.events >= BURST && runAfterIo !== undefined) {
    batching.deferred = true
    runAfterIo(flushAll)
  } else {
    flushAll()
  }
}

/**
 * A stream over a fresh inbox that `register` connects to its source when the stream starts (the
 * returned function disconnects it when the stream ends, however it ends). No scope and no fiber of
 * its own.
 *
 * @internal
 */
export const inboxStream = <A>(capacity: number, register: (inbox: Inbox<A>) => () => void): Stream.Stream<A> =>
  Stream.suspend(() => {
    let unregister: (() => void) | undefined
    return Stream.suspend(() => {
      const inbox = new Inbox<A>(capacity)
      unregister = register(inbox)
      return Stream.repeatEffectChunkOption(inbox.pull)
    }).pipe(Stream.ensuring(Effect.sync(() => unregister?.())))
  })
