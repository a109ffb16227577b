/**
 * What the device says about its network and its page, as plain callbacks: the sources under both
 * editions' `Network` (`makeManual`, `layerBrowser`). Each edition builds its own signal values
 * (`NetworkSignal`) from the tags given here, and its own `Effect` / `Stream` views.
 */

/** The kind of a network signal: the network came back or went away, or the page resumed. */
export type SignalTag = "Online" | "Offline" | "Resumed"

/** A synchronous source of network state: whether online now, and a subscription to signals `S`. */
export interface Source<S> {
  readonly isOnline: () => boolean
  /** Calls `listener` with every signal until the returned function is called. */
  readonly subscribe: (listener: (signal: S) => void) => () => void
}

/** A source the caller drives, with `set` (a signal only on a change) and `resume`. */
export interface Manual<S> {
  readonly source: Source<S>
  /** Reports the network up or down (a signal only when it changes). */
  readonly set: (online: boolean) => void
  /** Reports that the app came back to the foreground. */
  readonly resume: () => void
}

/** A source the caller drives, starting `online`; `signal` builds the edition's signal of a tag. */
export const manual = <S>(online: boolean, signal: (tag: SignalTag) => S): Manual<S> => {
  let current = online
  const listeners = new Set<(signal: S) => void>()
  const emit = (value: S) => {
    for (const listener of [...listeners]) listener(value)
  }
  return {
    source: {
      isOnline: () => current,
      subscribe: (listener) => {
        listeners.add(listener)
        return () => {
          listeners.delete(listener)
        }
      }
    },
    set: (online) => {
      if (online === current) return
      current = online
      emit(signal(online ? "Online" : "Offline"))
    },
    resume: () => emit(signal("Resumed"))
  }
}

/**
 * The page's view: `navigator.onLine` with the `online` / `offline` events of `window`, and
 * `visibilitychange` (to visible), `resume` and `pageshow` from the back-forward cache as
 * `Resumed`. Where there is no `window` (a worker, Node), it is always online and never signals.
 */
export const browser = <S>(signal: (tag: SignalTag) => S): Source<S> => {
  const g = globalThis as {
    readonly window?: EventTarget
    readonly document?: EventTarget & { readonly visibilityState?: string }
    readonly navigator?: { readonly onLine?: boolean }
  }
  const target = g.window
  const document = g.document
  return {
    isOnline: () => g.navigator?.onLine !== false,
    subscribe: (listener) => {
      if (target === undefined) return () => {}
      const online = () => listener(signal("Online"))
      const offline = () => listener(signal("Offline"))
      const resumed = () => listener(signal("Resumed"))
      const visible = () => {
        if (document?.visibilityState === "visible") resumed()
      }
      const shown = (event: Event) => {
        if ((event as { readonly persisted?: boolean }).persisted === true) resumed()
      }
      target.addEventListener("online", online)
      target.addEventListener("offline", offline)
      target.addEventListener("pageshow", shown)
      document?.addEventListener("visibilitychange", visible)
      document?.addEventListener("resume", resumed)
      return () => {
        target.removeEventListener("online", online)
        target.removeEventListener("offline", offline)
        target.removeEventListener("pageshow", shown)
        document?.removeEventListener("visibilitychange", visible)
        document?.removeEventListener("resume", resumed)
      }
    }
  }
}
