// One autocannon run in a process of its own (so it can be pinned to a core), for
// bench/proxy-bench.ts when wrk is not installed (saturation only: at a fixed rate autocannon's
// correction pads slow answers with samples, bench/constant-rate.ts): prints one JSON line.
// Usage: node bench/load-autocannon.ts <url> <connections> <seconds>
import autocannon from 'autocannon'

const [url, connections, seconds] = process.argv.slice(2)
const userIds = Array.from({ length: 10_000 }, (_, i) => `user-${i}`)
let n = 0
const result = await autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  requests: [
    {
      method: 'GET',
      path: '/api/movies',
      // A different user per request: the proxy evaluates the flag for each, nginx hashes the header.
      setupRequest: (req: Record<string, unknown>) => ({ ...req, headers: { 'x-user-id': userIds[n++ % userIds.length] } }),
    },
  ],
})
const run = { rps: result.requests.average, total: result.requests.total, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.timeouts, non2xx: result.non2xx }
process.stdout.write(`${JSON.stringify(run)}\n`)
