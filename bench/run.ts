// The result of one load run, as bench/proxy-bench.ts collects and prints it (latencies in ms).
export interface Run {
  rps: number
  /** Requests answered in the run. */
  total: number
  /** CPU time the server (and its child processes) spent per request, µs; undefined without /proc. */
  cpuUs?: number
  p50: number
  p99: number
  errors: number
  non2xx: number
}
