// Where a `node --cpu-prof` profile spends its time: self time per package or source file
// (node_modules/<package>, the repo's own files, Node's internals), and the inclusive time of
// each top-level frame below the event loop. Used for proxy/README.md's "where the time goes".
// Usage: npx tsx bench/profile-summary.ts <file.cpuprofile> [rows]
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
const profile = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }
const rows = Number(process.argv[3] ?? 30)

const self = new Map<number, number>()
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
const total = [...self.values()].reduce((a, b) => a + b, 0)

function where(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : `(native) ${fn}`
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) return pkg[1]!
  if (url.startsWith('node:')) return url
  const own = /\/(proxy|lib|bench)\/(.+)$/.exec(url)
  return own ? `${own[1]}/${own[2]}` : url
}

const byPlace = new Map<string, number>()
const byFunction = new Map<string, number>()
for (const node of profile.nodes) {
  const t = self.get(node.id) ?? 0
  if (!t) continue
  const place = where(node.callFrame.url, node.callFrame.functionName)
  byPlace.set(place, (byPlace.get(place) ?? 0) + t)
  const fn = `${node.callFrame.functionName || '(anonymous)'} ${place}:${node.callFrame.lineNumber + 1}`
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + t)
}
const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)} %`
const top = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, rows)
console.log(`${(total / 1e6).toFixed(1)} s sampled\n\nself time by package / file:`)
for (const [place, t] of top(byPlace)) console.log(`  ${pct(t)}  ${place}`)
console.log('\nself time by function:')
for (const [fn, t] of top(byFunction)) console.log(`  ${pct(t)}  ${fn}`)
