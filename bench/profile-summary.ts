// Where a `node --cpu-prof` profile of the proxy under load spends its busy time, per feature:
// each sample goes to the innermost frame of a known feature on its stack (rate limit, breaker,
// flags, metrics, access log, request id, forwarding headers, the undici call, Fastify's
// lifecycle), else to Node's core (HTTP server, sockets, streams, GC). Idle samples are left out.
// One process's own shares: the machine's speed, which moves a run's CPU per request by ±20 %
// here, moves every feature alike, so the shares are steadier than differences between runs.
// `npm run bench` profiles a proxy of its own at the end (featureShares); by hand:
//   npm run bench with BENCH_ONLY=proxy BENCH_PROFILE_DIR=/tmp/prof, then
//   node bench/profile-summary.ts /tmp/prof/<largest>.cpuprofile [last seconds, default 8]
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string }
  children?: number[]
}
export interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

/** A feature: what the table calls it, and the frames that are its own (by file, or by function and file). */
type Matcher = { url: RegExp; fn?: RegExp }
export const PROFILE_FEATURES: Array<[string, Matcher]> = [
  ['rate limit (edge/rate-limit*.ts, ioredis)', { url: /ioredis|redis-parser|standard-as-callback|proxy\/edge\/rate-limit/ }],
  ['breaker (opossum, forward/breakers.ts)', { url: /opossum|proxy\/forward\/breakers\.ts/ }],
  ['routing: flags and sticky decision (unleash-client, routing/, flags/)', { url: /unleash-client|murmurhash|proxy\/routing\/|proxy\/flags\// }],
  ['metrics (prom-client, observability/)', { url: /prom-client|proxy\/observability\// }],
  ['ramp traffic (rollout/ramp/traffic.ts)', { url: /proxy\/rollout\/ramp\/traffic\.ts/ }],
  ['console history (admin/traffic-history.ts)', { url: /proxy\/admin\/traffic-history\.ts/ }],
  ['shadow selection (rollout/shadow/)', { url: /proxy\/rollout\/shadow\// }],
  ['request id (requestIdOf, the x-request-id hook)', { url: /lib\/http\/create-app\.ts/, fn: /^(requestIdOf|genReqId)$/ }],
  ['forwarding headers (clientOf, proxy-addr)', { url: /proxy\/edge\/trust-proxy\.ts|proxy-addr/, fn: /^(clientOf|all|alladdrs|trust.*|compile.*|parseipNotation|normalize.*)$/ }],
  ['access log (pino, sonic-boom, the access-line hook)', { url: /node_modules\/pino\/|sonic-boom|fast-redact|lib\/logger\.ts|fastify\/lib\/logger-factory/ }],
  ['upstream call (undici)', { url: /node_modules\/undici\// }],
  ['Fastify lifecycle (fastify, find-my-way, light hooks)', { url: /node_modules\/fastify\/|find-my-way|lib\/http\/create-app\.ts/ }],
  ["the proxy's own forwarding code (proxy-routes.ts, forward/, edge/; lean-proxy.ts)", { url: /proxy\/(proxy-routes\.ts|forward\/|edge\/)|peers\/lean-proxy\.ts/ }],
]
export const CORE = 'Node core (HTTP parser and server, sockets, streams, timers, GC)'

/** Busy time and each feature's share of it, over the last `windowUs` of the profile. */
export function featureShares(profile: CpuProfile, windowUs: number): { busyUs: number; shares: Map<string, number> } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const featureOf = (frame: ProfileNode['callFrame']) =>
    PROFILE_FEATURES.find(([, m]) => m.url.test(frame.url) && (!m.fn || m.fn.test(frame.functionName)))?.[0]
  const total = profile.timeDeltas.reduce((a, b) => a + b, 0)
  let t = 0
  let busyUs = 0
  const spent = new Map<string, number>()
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0
    t += dt
    if (t < total - windowUs) return
    const leaf = byId.get(id)!.callFrame.functionName
    if (leaf === '(idle)' || leaf === '(program)') return
    busyUs += dt
    let feature = CORE
    for (let node: number | undefined = id; node !== undefined; node = parent.get(node)) {
      const hit = featureOf(byId.get(node)!.callFrame)
      if (hit) {
        feature = hit
        break
      }
    }
    spent.set(feature, (spent.get(feature) ?? 0) + dt)
  })
  return { busyUs, shares: new Map([...spent].map(([feature, us]) => [feature, us / busyUs])) }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const windowUs = Number(process.argv[3] ?? 8) * 1e6
  const { busyUs, shares } = featureShares(JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as CpuProfile, windowUs)
  console.log(`${(busyUs / 1e6).toFixed(1)} s busy in the last ${windowUs / 1e6} s`)
  for (const [feature, share] of [...shares].sort((a, b) => b[1] - a[1])) console.log(`  ${(100 * share).toFixed(1).padStart(5)} %  ${feature}`)
}
