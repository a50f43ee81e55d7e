// The noise detector's rules, table-driven: what two legacy answers allow to be learned (only
// scalar leaves under a key; nothing at all from a comparison where the data changed), and how a
// leaf becomes a rule (confirmations by different requests within a window), expires and is reset.
import { describe, expect, it } from 'vitest'
import type { Answer } from '../../../proxy/rollout/shadow/compare.ts'
import { MAX_LEARNED, MAX_NOISY_LEAVES, NoiseLearner, noiseCandidates } from '../../../proxy/rollout/shadow/noise.ts'
import { parsePathRule } from '../../../proxy/model/json-path.ts'

const json = (value: unknown, status = 200, headers: Record<string, string> = {}): Answer => ({
  status,
  headers: { 'content-type': 'application/json', ...headers },
  body: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
})
const candidates = (a: Answer, b: Answer, known: string[] = []) =>
  noiseCandidates(a, b, { known: known.map(parsePathRule), ignoreHeaders: new Set(), compareHeaders: new Set(['x-served-at']) })

describe('noiseCandidates', () => {
  const cases: Array<[string, Answer, Answer, string[], string[]?]> = [
    ['identical answers teach nothing', json({ a: 1 }), json({ a: 1 }), []],
    ['a scalar under a key', json({ served_at: 1, title: 'A' }), json({ served_at: 2, title: 'A' }), ['$.served_at']],
    ['a leaf in each list element, generalised to the leaf', json({ items: [{ id: 1, t: 1, a: 'x' }, { id: 2, t: 1, a: 'y' }] }), json({ items: [{ id: 1, t: 2, a: 'x' }, { id: 2, t: 3, a: 'y' }] }), ['$.items[*].t']],
    ['null to a value is a leaf', json({ seen_at: null, a: 1 }), json({ seen_at: 'now', a: 1 }), ['$.seen_at']],
    ['a header the route compares', json({ a: 1 }, 200, { 'x-served-at': '1' }), json({ a: 1 }, 200, { 'x-served-at': '2' }), ['header:x-served-at']],
    ['a path already known is skipped', json({ a: 1, b: 1 }), json({ a: 2, b: 2 }), ['$.b'], ['$.a']],
    // Nothing at all is learned from these: the data changed between the two calls.
    ['a list that grows (a concurrent insert)', json([{ id: 1, t: 'A' }]), json([{ id: 1, t: 'A' }, { id: 2, t: 'B' }]), []],
    ['a list that grows, with a noisy leaf beside it', json({ n: 1, items: [1] }), json({ n: 2, items: [1, 2] }), []],
    ['a list that shifts (a head insert in a fixed page)', json([{ id: 3, t: 'C' }, { id: 2, t: 'B' }]), json([{ id: 4, t: 'D' }, { id: 3, t: 'C' }]), []],
    ['a shifted list without ids (another record in each place)', json([{ t: 'C', y: 1 }, { t: 'B', y: 2 }]), json([{ t: 'D', y: 3 }, { t: 'C', y: 1 }]), []],
    ['an identity leaf', json({ id: 1, a: 'x' }), json({ id: 2, a: 'x' }), []],
    ['a foreign identity leaf', json({ movie_id: 1, a: 'x' }), json({ movie_id: 2, a: 'x' }), []],
    ['a camel-case identity leaf', json({ movieId: 1, a: 'x' }), json({ movieId: 2, a: 'x' }), []],
    ['an upper-case identity leaf', json({ ID: 1, a: 'x' }), json({ ID: 2, a: 'x' }), []],
    ['a key that merely ends in "id" is a leaf like any other', json({ paid: 1, a: 'x' }), json({ paid: 2, a: 'x' }), ['$.paid']],
    ['a scalar in a list (a rule would end in [*])', json({ tags: ['a', 'b'] }), json({ tags: ['a', 'c'] }), []],
    ['a key on one side only', json({ a: 1 }), json({ a: 1, b: 2 }), []],
    ['a change of kind', json({ a: 1 }), json({ a: [1] }), []],
    ['a different status', json({ a: 1 }), json({ a: 2 }, 500), []],
    ['a body that is not JSON', json('not json'), json('not json either'), []],
    ['too many leaves at once', json(Object.fromEntries(Array.from({ length: MAX_NOISY_LEAVES + 1 }, (_, i) => [`k${i}`, 1]))), json(Object.fromEntries(Array.from({ length: MAX_NOISY_LEAVES + 1 }, (_, i) => [`k${i}`, 2]))), []],
  ]
  it.each(cases)('%s', (_name, a, b, expected, known) => {
    expect(candidates(a, b, known)).toEqual(expected)
  })
})

describe('NoiseLearner', () => {
  const clock = () => {
    const c = { t: 1_000_000, now: () => c.t }
    return c
  }
  const settings = { confirmations: 3, windowMs: 60_000, ttlMs: 600_000 }

  it('learns a leaf only when different requests confirm it within the window', () => {
    const c = clock()
    const noise = new NoiseLearner(settings, c.now)
    // One request, however often repeated, is one confirmation.
    for (let i = 0; i < 5; i++) expect(noise.observe('req-1', ['$.a'])).toEqual([])
    expect(noise.observe('req-2', ['$.a'])).toEqual([])
    expect(noise.pendingList()).toEqual([{ rule: '$.a', confirmations: 2, needed: 3, firstSeenAt: new Date(c.t).toISOString() }])
    // The first confirmations fall out of the window: the third request alone is not enough.
    c.t += 60_001
    expect(noise.observe('req-3', ['$.a'])).toEqual([])
    expect(noise.size).toBe(0)
    expect(noise.observe('req-4', ['$.a'])).toEqual([])
    const learned = noise.observe('req-5', ['$.a', 'header:x-served-at'])
    expect(learned).toEqual([{ rule: '$.a', learnedAt: new Date(c.t).toISOString(), expiresAt: new Date(c.t + 600_000).toISOString(), confirmations: 3 }])
    expect(noise.paths().map((r) => r.source)).toEqual(['$.a'])
    expect(noise.headers()).toEqual([])
    expect(noise.pendingList().map((p) => p.rule)).toEqual(['header:x-served-at'])
  })

  it('keeps no more confirmations than needed once the route holds its maximum of rules', () => {
    const noise = new NoiseLearner({ ...settings, confirmations: 2 })
    for (let i = 0; i < MAX_LEARNED; i++) for (const id of ['a', 'b']) noise.observe(id, [`$.k${i}`])
    expect(noise.size).toBe(MAX_LEARNED)
    for (let i = 0; i < 50; i++) expect(noise.observe(`r${i}`, ['$.more'])).toEqual([])
    expect(noise.pendingList()).toEqual([{ rule: '$.more', confirmations: 2, needed: 2, firstSeenAt: expect.any(String) }])
  })

  it('expires a learned rule after its TTL, and forgets everything on reset', () => {
    const c = clock()
    const noise = new NoiseLearner({ ...settings, confirmations: 2 }, c.now)
    noise.observe('r1', ['$.a', 'header:x-t'])
    expect(noise.observe('r2', ['$.a', 'header:x-t']).map((r) => r.rule)).toEqual(['$.a', 'header:x-t'])
    expect(noise.headers()).toEqual(['x-t'])
    c.t += 599_999
    expect(noise.expire()).toEqual([])
    c.t += 1
    expect(noise.expire().map((r) => r.rule)).toEqual(['$.a', 'header:x-t'])
    expect(noise.list()).toEqual([])
    noise.observe('r3', ['$.b'])
    noise.observe('r4', ['$.b'])
    noise.observe('r5', ['$.c'])
    expect(noise.reset().map((r) => r.rule)).toEqual(['$.b'])
    expect([noise.list(), noise.pendingList()]).toEqual([[], []])
  })
})
