// The comparison and its JSON paths, table-driven: what counts as the same answer, what is named
// as a difference, and what the ignore rules drop.
import { describe, expect, it } from 'vitest'
import { compareAnswers, headersOnly, MAX_DIFFERENCES, type Answer } from '../../../proxy/rollout/shadow/compare.ts'
import { coveredByAny, formatPath, generalise, parsePathRule } from '../../../proxy/model/json-path.ts'
import { credentialsOf, keptValue, redactedUrl } from '../../../proxy/rollout/shadow/report.ts'

const json = (value: unknown, status = 200, headers: Record<string, string> = {}): Answer => ({
  status,
  headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  body: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
})
const text = (body: string, type = 'text/plain'): Answer => ({ status: 200, headers: { 'content-type': type }, body: Buffer.from(body) })
const rules = (ignore: string[] = [], ignoreHeaders: string[] = []) => ({ ignore: ignore.map(parsePathRule), ignoreHeaders: new Set(ignoreHeaders) })
const paths = (legacy: Answer, target: Answer, ignore: string[] = [], ignoreHeaders: string[] = []) => compareAnswers(legacy, target, rules(ignore, ignoreHeaders)).map((d) => d.path)

describe('compareAnswers', () => {
  const cases: Array<[string, Answer, Answer, string[], string[]?]> = [
    ['identical bytes', json({ a: 1 }), json({ a: 1 }), []],
    ['key order is ignored', json('{"a":1,"b":[1,2]}'), json('{"b":[1,2],"a":1}'), []],
    ['numbers compare by value', json('{"rating":7.0,"n":1e2}'), json('{"rating":7,"n":100}'), []],
    ['whitespace is not a difference', json('{ "a" : [ 1 , 2 ] }'), json('{"a":[1,2]}'), []],
    ['a changed scalar is named by its path', json({ movies: [{ id: 1, title: 'A' }] }), json({ movies: [{ id: 1, title: 'B' }] }), ['$.movies[0].title']],
    ['arrays compare in order', json({ ids: [1, 2] }), json({ ids: [2, 1] }), ['$.ids[0]', '$.ids[1]']],
    ['a missing element is named', json({ ids: [1, 2] }), json({ ids: [1] }), ['$.ids[1]']],
    ['a missing key is named', json({ a: 1, b: 2 }), json({ a: 1 }), ['$.b']],
    ['a type change is one difference', json({ a: { x: 1 } }), json({ a: [1] }), ['$.a']],
    ['null differs from absent', json({ a: null }), json({}), ['$.a']],
    ['"1" differs from 1', json({ a: '1' }), json({ a: 1 }), ['$.a']],
    ['status differs', json({ a: 1 }, 200), json({ a: 1 }, 404), ['status']],
    ['content type differs', json({ a: 1 }), text('{"a":1}'), ['header:content-type']],
    ['content type parameters: case and order do not matter', json({ a: 1 }, 200, { 'content-type': 'application/json;charset=UTF-8' }), json({ a: 1 }, 200, { 'content-type': 'application/json; charset=utf-8' }), []],
    ['noisy headers are not compared', json({ a: 1 }, 200, { date: 'Mon', etag: '"1"', 'x-request-id': 'a' }), json({ a: 1 }, 200, { date: 'Tue', etag: '"2"', 'x-request-id': 'b' }), []],
    ['other headers are compared', json({ a: 1 }, 200, { 'cache-control': 'no-store' }), json({ a: 1 }), ['header:cache-control']],
    ['non-JSON bodies compare by bytes', text('hello'), text('hellO'), ['body']],
    ['equal non-JSON bodies match', text('hello'), text('hello'), []],
    ['unparseable JSON compares by bytes', json('{"a":'), json('{"a":1}'), ['body']],
    ['empty bodies (HEAD) match', json(''), json(''), []],
    ['deep key with an odd name', json({ 'a b': { c: 1 } }), json({ 'a b': { c: 2 } }), ["$['a b'].c"]],
  ]
  it.each(cases)('%s', (_name, legacy, target, expected) => {
    expect(paths(legacy, target)).toEqual(expected)
  })

  const ignored: Array<[string, unknown, unknown, string[], string[]]> = [
    ['a key path', { a: { b: 1, c: 1 } }, { a: { b: 2, c: 1 } }, ['$.a.b'], []],
    ['a rule covers everything below it', { a: { b: [1, 2] } }, { a: { b: [3] } }, ['$.a'], []],
    ['[*] in arrays', { items: [{ u: 1, id: 1 }, { u: 2, id: 2 }] }, { items: [{ u: 9, id: 1 }, { u: 8, id: 2 }] }, ['$.items[*].u'], []],
    ['[n] only that element', { items: [1, 2] }, { items: [9, 9] }, ['$.items[0]'], ['$.items[1]']],
    ['.. at any depth', { a: { b: { updated_at: 1 } }, updated_at: 2 }, { a: { b: { updated_at: 3 } }, updated_at: 4 }, ['$..updated_at'], []],
    ['.* any key', { a: { x: 1, y: 2 } }, { a: { x: 3, y: 4 } }, ['$.a.*'], []],
    ["['quoted'] keys", { 'a b': 1 }, { 'a b': 2 }, ["$['a b']"], []],
    ['a rule does not cover a sibling', { a: 1, ab: 1 }, { a: 2, ab: 2 }, ['$.a'], ['$.ab']],
  ]
  it.each(ignored)('ignore: %s', (_name, legacy, target, ignore, expected) => {
    expect(paths(json(legacy), json(target), ignore)).toEqual(expected)
  })

  it('ignoreHeaders drops a header from the comparison', () => {
    const [a, b] = [json({}, 200, { 'cache-control': 'no-cache' }), json({}, 200, { 'cache-control': 'max-age=60' })]
    expect(paths(a, b)).toEqual(['header:cache-control'])
    expect(paths(a, b, [], ['cache-control'])).toEqual([])
  })

  it('compares only the headers that describe the content, others when the route lists them (compareHeaders)', () => {
    const served = (by: string, extra: Record<string, string> = {}) => json({ a: 1 }, 200, { 'x-served-by': by, via: `1.1 ${by}`, 'x-envoy-upstream-service-time': by.length.toString(), ...extra })
    expect(paths(served('legacy'), served('target-service'))).toEqual([])
    const withServedBy = { ...rules(), compareHeaders: new Set(['x-served-by']) }
    expect(compareAnswers(served('legacy'), served('target'), withServedBy).map((d) => d.path)).toEqual(['header:x-served-by'])
    const cors = paths(served('a', { 'access-control-allow-origin': '*', location: '/a' }), served('a', { 'access-control-allow-origin': 'https://x', location: '/b' }))
    expect(cors).toEqual(['header:access-control-allow-origin', 'header:location'])
    expect(headersOnly(compareAnswers(served('a', { allow: 'GET' }), served('a', { allow: 'GET, POST' }), rules()))).toBe(true)
    expect(headersOnly(compareAnswers(json({ a: 1 }, 200, { allow: 'GET' }), json({ a: 2 }, 200, { allow: 'POST' }), rules()))).toBe(false)
  })

  it('reports both values, and at most MAX_DIFFERENCES differences', () => {
    expect(compareAnswers(json({ a: 'x' }), json({ a: 'y', b: true }), rules())).toEqual([
      { path: '$.a', steps: ['a'], legacy: 'x', target: 'y' },
      { path: '$.b', steps: ['b'], legacy: '(absent)', target: true },
    ])
    const many = (v: number) => json(Array.from({ length: 100 }, () => v))
    expect(compareAnswers(many(1), many(2), rules())).toHaveLength(MAX_DIFFERENCES)
  })

  it('never reports a non-JSON body by content', () => {
    const [d] = compareAnswers(text('secret-a'), text('secret-b'), rules())
    expect(JSON.stringify(d)).not.toContain('secret')
    expect(d.legacy).toMatch(/^8 bytes, sha256 [0-9a-f]{16}$/)
  })
})

describe('JSON path rules', () => {
  const bad: Array<[string, RegExp]> = [
    ['a.b', /must start with "\$"/],
    ['$', /whole body/],
    ['$.', /followed by a name/],
    ['$.a[', /expected/],
    ['$.a[x]', /expected/],
    ['$...a', /followed by a name/],
  ]
  it.each(bad)('%s is refused', (source, why) => {
    expect(() => parsePathRule(source)).toThrow(why)
  })

  it('covers by segment, formats and generalises paths', () => {
    const rule = parsePathRule('$.items[*].updated_at')
    expect(coveredByAny([rule], ['items', 3, 'updated_at'])).toBe(true)
    expect(coveredByAny([rule], ['items', 3, 'updated_at', 'x'])).toBe(true)
    expect(coveredByAny([rule], ['items', 3, 'title'])).toBe(false)
    expect(coveredByAny([rule], ['items'])).toBe(false)
    expect(formatPath(['items', 3, 'updated_at'])).toBe('$.items[3].updated_at')
    expect(generalise(['items', 3, 'tags', 0])).toBe('$.items[*].tags[*]')
    expect(parsePathRule(generalise(['items', 3, 'x'])).steps).toHaveLength(3)
  })
})

describe('what a report keeps', () => {
  it('redacts secret-looking query values, keeps the others', () => {
    expect(redactedUrl('/api/movies?page=2&access_token=abc&apiKey=k&user_id=7')).toBe('/api/movies?page=2&access_token=%5Bredacted%5D&apiKey=%5Bredacted%5D&user_id=7')
    expect(redactedUrl('/api/movies')).toBe('/api/movies')
  })

  it('redacts values holding the request credentials and truncates long ones', () => {
    const creds = credentialsOf({ authorization: 'Bearer s3cr3t-token-value', cookie: 'sid=session-abcdef; x=1' })
    expect(creds).toEqual(['Bearer s3cr3t-token-value', 's3cr3t-token-value', 'session-abcdef'])
    expect(keptValue({ echo: 'got s3cr3t-token-value' }, creds)).toBe('[redacted]')
    expect(keptValue('session-abcdef', creds)).toBe('[redacted]')
    expect(keptValue(42, creds)).toBe(42)
    expect(keptValue('x'.repeat(500), creds)).toMatch(/^x{200}… \(500 chars\)$/)
  })
})
