// The contract of a flag source: what the routing, admin and ops code may ask of the rollout
// flags, whichever source serves them. The sources implement it (file-flag-source.ts,
// unleash-flag-source.ts), flag-evaluator.ts holds what they share, flag-sources.ts picks one.
export type FlagOrigin = 'unleash' | 'file' | 'env'

export interface FlagState {
  flag: string
  /** Share of identities sent to the target; undefined when the flag is richer than a plain rollout. */
  percent: number | undefined
  sticky: boolean
  /** Which source the current definition came from. */
  source: FlagOrigin
  /** True when the source defines the flag (false/absent: the state is the default of a flag nobody defined). */
  defined?: boolean
}

export interface FlagSourceStatus {
  kind: 'unleash' | 'file'
  /** Definitions are loaded: from the source, or for Unleash the last state the replicas fetched (Redis). False: split routes answer 503, /ready 503. */
  loaded: boolean
  /** Unleash only: what the flags in force come from. */
  servedFrom?: 'unleash' | 'last-known' | 'none'
  /** When the last known state in force was saved by a replica (servedFrom last-known). */
  lastKnownSavedAt?: string
  /** Why nothing is loaded (loaded false). */
  notLoaded?: string
  /** The last fetch or read succeeded. False = serving the last known flags. */
  healthy: boolean
  location: string
  lastSuccessAt?: string
  lastError?: string
}

export interface FlagSource {
  readonly kind: 'unleash' | 'file'
  /** Hot path: is `flag` on for `userId`. Never throws, never waits. */
  isEnabled(flag: string, userId: string): boolean
  state(flag: string): FlagState
  status(): FlagSourceStatus
  /**
   * Sets a plain rollout and updates the proxy's own state before it resolves: the file source
   * writes the flags file, the Unleash source the Unleash Admin API (when UNLEASH_ADMIN_TOKEN is
   * set). A flag managed elsewhere rejects with errors.FLAG_IN_UNLEASH, FLAG_PINNED_BY_ENV
   * or FLAG_CHANGE_REFUSED (409), an unreachable Unleash with FLAG_WRITE_FAILED (502). Goes through proxy/rollout/rollout-changes.ts, which records it in the ledger.
   */
  setRollout?(flag: string, percent: number): Promise<FlagState>
  /** Called after every change of definitions or health. */
  onChange(listener: () => void): void
  close(): Promise<void>
}

