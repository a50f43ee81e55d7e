// The fixed windows of the rate limit's stores (rate-limit-store.ts), per client key, for at most
// `maxKeys` keys at once: the one bound on their memory. A new window goes to the end of the map,
// so the map is in the order windows started and the ended ones gather at its head: each new
// window drops those first (idle clients leave as new ones come), and a full map drops every
// ended window, then the oldest tenth of the clients.

export const DEFAULT_MAX_KEYS = 100_000

/** What a store keeps per client and window: its own fields and when the window ends (epoch ms). */
export interface Window {
  resetAt: number
}

export class Windows<W extends Window> {
  private readonly windows = new Map<string, W>()

  private readonly maxKeys: number

  constructor(maxKeys: number) {
    this.maxKeys = maxKeys
  }

  /** The key's window if it is still running at `now`. */
  running(key: string, now: number): W | undefined {
    const window = this.windows.get(key)
    return window && window.resetAt > now ? window : undefined
  }

  /** Makes `window` the key's window (replacing an ended one) and returns it. */
  start(key: string, window: W, now: number): W {
    this.windows.delete(key)
    this.makeRoom(now)
    this.windows.set(key, window)
    return window
  }

  private makeRoom(now: number): void {
    for (const [key, window] of this.windows) {
      if (window.resetAt > now) break
      this.windows.delete(key)
    }
    if (this.windows.size < this.maxKeys) return
    for (const [key, window] of this.windows) if (window.resetAt <= now) this.windows.delete(key)
    let excess = this.windows.size - Math.floor(this.maxKeys * 0.9)
    for (const key of this.windows.keys()) {
      if (excess-- <= 0) break
      this.windows.delete(key)
    }
  }
}
