// Roles of the admin tokens (ADMIN_TOKENS=name:token:role): a viewer reads, an operator also
// changes what can be undone, an owner also takes the irreversible steps (retire, force,
// conflict repair, the learned noise reset). A call above the token's role is 403 of the catalogue and changes nothing.
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../proxy/config.ts'
import { admin, flagsFileAt, startProxy, startStubs, type ProxyUnderTest, type Stubs } from './proxy-harness.ts'

const secret = () => randomBytes(24).toString('base64url')
const tokens = { vera: secret(), otto: secret(), olga: secret(), plain: secret() }
const as = (name: keyof typeof tokens) => ({ authorization: `Bearer ${tokens[name]}` })

let stubs: Stubs
let proxy: ProxyUnderTest

beforeAll(async () => {
  stubs = await startStubs()
  proxy = await startProxy(stubs, {
    FLAGS_FILE: flagsFileAt(10),
    ADMIN_TOKENS: `vera:${tokens.vera}:viewer,otto:${tokens.otto}:operator,olga:${tokens.olga}:owner,plain:${tokens.plain}`,
  })
})
afterAll(async () => {
  await proxy?.close()
  await stubs?.close()
})

const call = (method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, headers: Record<string, string>, payload?: Record<string, unknown>) => proxy.ops.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) })

describe('admin token roles', () => {
  it('parses name:token:role, a token without a role is an owner', () => {
    const config = loadConfig({ ADMIN_TOKENS: `a:${tokens.vera}:viewer,b:${tokens.plain}`, FLAGS_FILE: flagsFileAt(0) })
    expect(config.adminTokens.map((t) => [t.name, t.role])).toEqual([['a', 'viewer'], ['b', 'owner']])
    expect(config.adminTokens[0]!.token).toBe(tokens.vera)
  })

  it('whoami tells each token its role and what the console may offer', async () => {
    expect((await call('GET', '/admin/whoami', as('vera'))).json()).toEqual({ actor: 'vera', role: 'viewer', may: { read: true, change: false, irreversible: false } })
    expect((await call('GET', '/admin/whoami', as('otto'))).json()).toMatchObject({ role: 'operator', may: { change: true, irreversible: false } })
    expect((await call('GET', '/admin/whoami', as('plain'))).json()).toMatchObject({ role: 'owner', may: { irreversible: true } })
    expect((await call('GET', '/admin/whoami', admin)).json()).toMatchObject({ actor: 'admin', role: 'owner' })
  })

  it('a viewer reads but changes nothing', async () => {
    expect((await call('GET', '/admin/state', as('vera'))).statusCode).toBe(200)
    expect((await call('GET', '/admin/ledger', as('vera'))).statusCode).toBe(200)
    const res = await call('PUT', '/admin/routes/movies/rollout', as('vera'), { percent: 20, reason: 'try' })
    expect(res.statusCode).toBe(403)
    expect(res.json()).toMatchObject({ code: 'CA_ERR_ADMIN_ROLE_INSUFFICIENT', error: expect.stringContaining('needs operator') })
    expect((await call('POST', '/admin/routes/movies/retire', as('vera'), { reason: 'no' })).statusCode).toBe(403)
    expect((await call('GET', '/admin/state', as('vera'))).json().routes.find((r: { name: string }) => r.name === 'movies').percent).toBe(10)
  })

  it('an operator rolls out and switches writes, but cannot retire or force', async () => {
    const rollout = await call('PUT', '/admin/routes/movies/rollout', as('otto'), { percent: 20, reason: 'step' })
    expect(rollout.statusCode).toBe(200)
    const retire = await call('POST', '/admin/routes/movies/retire', as('otto'), { reason: 'done' })
    expect(retire.statusCode).toBe(403)
    expect(retire.json().error).toContain('needs owner')
    const forced = await call('PUT', '/admin/routes/movies/writes', as('otto'), { side: 'target', reason: 'now', force: true })
    expect(forced.statusCode).toBe(403)
    const resolve = await call('POST', '/admin/routes/movies/conflicts/resolve', as('otto'), { key: '1', keep: 'legacy', reason: 'fix' })
    expect(resolve.statusCode).toBe(403)
    // What the noise detector learned over hours is not undone by a click: the owner's.
    const noise = await call('DELETE', '/admin/routes/movies/shadow/noise', as('otto'))
    expect(noise.statusCode).toBe(403)
    expect(noise.json().error).toContain('needs owner')
    const ledger = (await call('GET', '/admin/ledger', as('otto'))).json()
    expect(JSON.stringify(ledger)).toContain('otto')
  })

  it('an owner may retire (the stage guards answer, not the role check)', async () => {
    const retire = await call('POST', '/admin/routes/movies/retire', as('olga'), { reason: 'done' })
    // The writes are still on legacy: the stage guard refuses (409), which only an owner's call reaches.
    expect(retire.statusCode).toBe(409)
    expect(retire.json().code).not.toBe('CA_ERR_ADMIN_ROLE_INSUFFICIENT')
    expect(retire.json().code).toMatch(/^CA_ERR_/)
    const noise = await call('DELETE', '/admin/routes/movies/shadow/noise', as('olga'))
    expect(noise.statusCode).toBe(200)
    expect(noise.json()).toMatchObject({ route: 'movies', dropped: [] })
  })
})
