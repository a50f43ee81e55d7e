// Latency at a fixed request rate, measured by Vegeta (dev/vegeta) in an open model, so free of
// coordinated omission (its README says so; its maintainer in tsenart/vegeta#520: "it will keep
// sending requests at specified rate, regardless of how slow the server is to respond"). How, in
// its source (lib/attack.go, lib/pacer.go, v12.13.0):
// - The attack loop hands out the n-th request at its slot, (n+1)/rate after the start, by the
//   wall clock, whatever the earlier requests are doing; a free worker sends it, and when every
//   worker is waiting for an answer a new worker is started (up to -max-workers).
// - A request's latency runs from the moment its worker takes it (Result.Timestamp, before even a
//   connection is found for it) to the end of its body.
// So while a worker is always free, every request leaves at its slot and a slow answer delays no
// later request: a 1 s stall at 200 req/s shows as 200 slow requests, not as the few a closed-loop
// client (autocannon, wrk: each connection waits for its answer) would have had in flight.
// If the workers run out, the loop blocks, then catches up in a burst: the late requests' wait is
// left out of their latency, which is coordinated omission again, and the achieved rate still ends
// near the target. Hence -max-workers is above rate × timeout (no request outlives -timeout, so no
// more can be outstanding; it also bounds the connections), and each run checks the schedule from
// the results themselves: every request's send time against its slot. The percentiles are computed
// here from those per-request results (exact; Vegeta's report estimates them and has no p99.9).
// Connections: no -max-connections cap (each outstanding request gets a connection of its own, as
// independent clients would); -connections, the idle pool, as large as the workers, so connections
// opened in a burst are reused rather than closed; -keepalive, like the clients of the proxy.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureVegeta } from '../dev/vegeta/vegeta.ts'
import type { Run } from './run.ts'

export interface ConstantRateOptions {
  /** Origin of the server, e.g. http://127.0.0.1:8080; the requests are GET <url>/api/movies. */
  url: string
  /** Requests per second, sent on schedule. */
  rate: number
  seconds: number
  /** Distinct X-User-Id values, one per request in turn (user-0 … user-<users-1>). */
  users: number
  /** Per-request timeout (10 s); an answer later than that counts as an error. */
  timeoutS?: number
  /** Wraps the load generator's command, e.g. to pin it to a core with taskset. */
  pin?: (command: string, args: string[]) => [string, string[]]
}

export interface ConstantRateRun extends Run {
  p90: number
  p999: number
  max: number
  /** How late requests left after their slots in the schedule, ms: 99th percentile and latest.
   *  Up to ~1 ms is the pacing's own granularity (Go's timers), unrelated to the answers. */
  lagP99Ms: number
  lagMaxMs: number
  /** The generator fell behind: it sent under 97 % of the rate, or over 1 % of the requests left
   *  more than 10 ms late. That wait is not in their latencies, which then understate. */
  behindSchedule: boolean
}

const LAG_LIMIT_MS = 10

/** One Vegeta result line (`vegeta encode -to=json`). */
interface Result {
  seq: number
  code: number
  /** RFC 3339 with nanoseconds. */
  timestamp: string
  /** ns */
  latency: number
}

/** Seconds since the epoch of an RFC 3339 timestamp, nanosecond fraction kept (Date keeps ms). */
function epochSeconds(timestamp: string): number {
  const fraction = /\.(\d+)/.exec(timestamp)?.[1] ?? '0'
  return Date.parse(timestamp.replace(/\.\d+/, '')) / 1000 + Number(`0.${fraction}`)
}

/** Nearest-rank percentile of ascending values. */
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0

export function constantRate(options: ConstantRateOptions): ConstantRateRun {
  const timeoutS = options.timeoutS ?? 10
  const maxWorkers = Math.ceil(options.rate * (timeoutS + 1))
  const pin = options.pin ?? ((command, args) => [command, args])
  const vegeta = ensureVegeta()
  const work = mkdtempSync(join(tmpdir(), 'constant-rate-'))
  try {
    const targets = Array.from({ length: options.users }, (_, n) => `GET ${options.url}/api/movies\nX-User-Id: user-${n}\n`)
    writeFileSync(join(work, 'targets.txt'), targets.join('\n'))
    const exec = (args: string[], timeoutMs: number) => {
      const [cmd, argv] = pin(vegeta, args)
      const result = spawnSync(cmd, argv, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1024 * 1024 * 1024 })
      if (result.status !== 0) throw new Error(`vegeta ${args[0]} failed: ${result.stderr || result.error?.message}`)
      return result.stdout
    }
    exec(
      [
        'attack',
        `-targets=${join(work, 'targets.txt')}`,
        `-output=${join(work, 'results.bin')}`,
        `-rate=${options.rate}/s`,
        `-duration=${options.seconds}s`,
        `-timeout=${timeoutS}s`,
        `-max-workers=${maxWorkers}`,
        `-connections=${maxWorkers}`,
        '-keepalive=true',
        '-max-body=0',
      ],
      (options.seconds + timeoutS + 30) * 1000,
    )
    const lines = exec(['encode', '-to=json', join(work, 'results.bin')], 60_000).split('\n').filter(Boolean)
    const run = summarize(lines.map((line) => JSON.parse(line) as Result), options.rate)
    if (run.behindSchedule) {
      console.warn(`constant-rate: vegeta fell behind schedule at ${options.rate}/s (sent ${run.rps.toFixed(0)}/s, lag p99 ${run.lagP99Ms.toFixed(1)} ms, max ${run.lagMaxMs.toFixed(1)} ms): its latencies understate`)
    }
    return run
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

function summarize(results: Result[], rate: number): ConstantRateRun {
  if (!results.length) throw new Error('vegeta sent no request')
  // Send times relative to the first result's (results come in the order they were answered).
  const start = epochSeconds(results[0]!.timestamp)
  const sent = results.map((r) => epochSeconds(r.timestamp) - start)
  let first = Infinity
  let last = -Infinity
  let origin = Infinity // of the schedule: the earliest send less its slot, so no request is early
  for (const [i, r] of results.entries()) {
    first = Math.min(first, sent[i]!)
    last = Math.max(last, sent[i]!)
    origin = Math.min(origin, sent[i]! - r.seq / rate)
  }
  const lags = results.map((r, i) => (sent[i]! - origin - r.seq / rate) * 1000).sort((a, b) => a - b)
  // As Vegeta's report counts it: requests over the time from the first send to the last.
  const rps = last > first ? results.length / (last - first) : 0
  const latencies = results.map((r) => r.latency / 1e6).sort((a, b) => a - b)
  const errors = results.filter((r) => r.code === 0).length
  return {
    rps,
    total: results.length - errors,
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    p999: percentile(latencies, 99.9),
    max: latencies.at(-1)!,
    errors,
    non2xx: results.filter((r) => r.code !== 0 && (r.code < 200 || r.code > 299)).length,
    lagP99Ms: percentile(lags, 99),
    lagMaxMs: lags.at(-1)!,
    behindSchedule: rps < 0.97 * rate || percentile(lags, 99) > LAG_LIMIT_MS,
  }
}
