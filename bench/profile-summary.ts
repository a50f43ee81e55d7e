// Where a `node --cpu-prof` profile of the proxy under load spends its busy time, per feature:
// each sample goes to the innermost frame of a known feature on its stack (rate limit, breaker,
// flags, metrics, access log, the undici call, Fastify's lifecycle), else to Node's core (HTTP
// server, sockets, streams, GC). Idle samples and the start-up before the first forwarded
// request are left out. Used for proxy/README.md's "where the time goes".
//   npm run bench with BENCH_ONLY=proxy BENCH_PROFILE_DIR=/tmp/prof, then
//   node bench/profile-summary.ts /tmp/prof/<largest>.cpuprofile [seconds, default 8]
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string }
  children?: number[]
}
const profile = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }
const windowUs = Number(process.argv[3] ?? 8) * 1e6

const FEATURES: Array<[string, RegExp]> = [
  ['rate limit (edge/rate-limit*.ts, ioredis)', /ioredis|redis-parser|standard-as-callback|proxy\/edge\/rate-limit/],
  ['breaker (opossum, forward/breakers.ts)', /opossum|proxy\/forward\/breakers\.ts/],
  ['flags and sticky decision (unleash-client, routing/, flags/)', /unleash-client|murmurhash|proxy\/routing\/|proxy\/flags\//],
  ['metrics (prom-client, observability/metrics.ts)', /prom-client|proxy\/observability\/metrics\.ts/],
  ['ramp traffic (rollout/ramp/traffic.ts)', /proxy\/rollout\/ramp\/traffic\.ts/],
  ['shadow selection (rollout/shadow/)', /proxy\/rollout\/shadow\//],
  ['access log (pino, sonic-boom)', /node_modules\/pino\/|sonic-boom|fast-redact|lib\/logger\.ts/],
  ['upstream call (undici)', /node_modules\/undici\//],
  ['Fastify lifecycle (fastify, find-my-way, light hooks)', /node_modules\/fastify\/|find-my-way|lib\/http\/create-app\.ts/],
  ['the proxy\'s own forwarding code (proxy-routes.ts, forward/, edge/; lean-proxy.ts)', /proxy\/(proxy-routes\.ts|forward\/|edge\/)|peers\/lean-proxy\.ts/],
]
const CORE = 'Node core (HTTP parser and server, sockets, streams, timers, GC)'

const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
function* stack(id: number | undefined) {
  while (id !== undefined) {
    yield byId.get(id)!
    id = parent.get(id)
  }
}
const featureOf = (url: string) => FEATURES.find(([, re]) => re.test(url))?.[0]

let t = 0
let start: number | undefined
let busy = 0
const spent = new Map<string, number>()
profile.samples.forEach((id, i) => {
  t += profile.timeDeltas[i] ?? 0
  const frames = [...stack(id)]
  if (start === undefined) {
    if (frames.some((f) => /proxy-routes\.ts|lean-proxy\.ts/.test(f.callFrame.url))) start = t
    else return
  }
  if (t > start + windowUs) return
  const leaf = frames[0]!.callFrame.functionName
  if (leaf === '(idle)') return
  const dt = profile.timeDeltas[i] ?? 0
  busy += dt
  let feature = CORE
  for (const f of frames) {
    const hit = featureOf(f.callFrame.url)
    if (hit) {
      feature = hit
      break
    }
  }
  spent.set(feature, (spent.get(feature) ?? 0) + dt)
})
console.log(`${(busy / 1e6).toFixed(1)} s busy in the first ${windowUs / 1e6} s of load`)
for (const [feature, us] of [...spent].sort((a, b) => b[1] - a[1])) console.log(`  ${((100 * us) / busy).toFixed(1).padStart(5)} %  ${feature}`)
