// The JSON paths of the shadow comparison: how a difference is named ($.items[3].title) and the
// ignore rules a route gives ($.a.b, $.items[*].updated_at, $..etag). A rule covers the value
// it names and everything below it.

/** One step of a concrete path: an object key or an array index. */
export type Step = string | number

/** One step of a rule: a key, an index, any key or index (`*`), or any depth (`..`). */
type RuleStep = { key: string } | { index: number } | { any: true } | { descend: true }

export interface PathRule {
  /** As written in the route map or the admin call. */
  source: string
  steps: RuleStep[]
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$-]*/

/** Parses `$...`; throws an Error naming the position of the first problem. */
export function parsePathRule(source: string): PathRule {
  if (typeof source !== 'string' || !source.startsWith('$')) throw new Error(`"${String(source).slice(0, 60)}" must start with "$"`)
  const steps: RuleStep[] = []
  let at = 1
  const fail = (why: string): never => {
    throw new Error(`"${source.slice(0, 100)}" at ${at}: ${why}`)
  }
  while (at < source.length) {
    const rest = source.slice(at)
    if (rest.startsWith('.')) {
      // ".name" / ".*" one level down; "..name" / "..*" at any depth below.
      const dots = rest.startsWith('..') ? 2 : 1
      if (dots === 2) steps.push({ descend: true })
      at += dots
      const name = IDENT.exec(source.slice(at))?.[0] ?? (source[at] === '*' ? '*' : undefined)
      if (!name) fail(`"${'.'.repeat(dots)}" must be followed by a name or "*" (use ['...'] for other keys)`)
      steps.push(name === '*' ? { any: true } : { key: name! })
      at += name!.length
    } else if (rest.startsWith('[*]')) {
      steps.push({ any: true })
      at += 3
    } else if (/^\[\d+\]/.test(rest)) {
      const digits = /^\[(\d+)\]/.exec(rest)![1]
      steps.push({ index: Number(digits) })
      at += digits.length + 2
    } else if (/^\['[^']*'\]/.test(rest)) {
      const key = /^\['([^']*)'\]/.exec(rest)![1]
      steps.push({ key })
      at += key.length + 4
    } else fail('expected ".name", "[n]", "[*]", "[\'key\']" or "..name"')
  }
  if (steps.length === 0) fail('"$" alone would ignore the whole body')
  return { source, steps }
}

/** True when the rule names `path` or one of its ancestors. */
export function ruleCovers(rule: PathRule, path: readonly Step[]): boolean {
  return matchFrom(rule.steps, 0, path, 0)
}

function matchFrom(steps: RuleStep[], s: number, path: readonly Step[], p: number): boolean {
  if (s === steps.length) return true // a rule covers everything below what it names
  if (p === path.length) return false
  const step = steps[s]
  if ('descend' in step) {
    for (let q = p; q < path.length; q++) if (matchFrom(steps, s + 1, path, q)) return true
    return false
  }
  const here = path[p]
  const ok = 'any' in step || ('key' in step ? here === step.key : here === step.index)
  return ok && matchFrom(steps, s + 1, path, p + 1)
}

export function coveredByAny(rules: readonly PathRule[], path: readonly Step[]): boolean {
  for (const rule of rules) if (ruleCovers(rule, path)) return true
  return false
}

/** `$.items[3].title`; keys that are not plain names are quoted: `$['a b']`. */
export function formatPath(path: readonly Step[]): string {
  let out = '$'
  for (const step of path) {
    if (typeof step === 'number') out += `[${step}]`
    else if (IDENT.exec(step)?.[0] === step) out += `.${step}`
    else out += `['${step.replace(/'/g, '')}']`
  }
  return out
}

/** The rule a learned noisy path becomes: array positions generalised (`$.items[*].updated_at`). */
export function generalise(path: readonly Step[]): string {
  return formatPath(path.map((s) => (typeof s === 'number' ? -1 : s))).replace(/\[-1\]/g, '[*]')
}
