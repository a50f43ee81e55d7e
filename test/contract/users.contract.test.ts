// POST/GET /api/users: what the legacy answered, row by row (docs/contract.md, "Users").
import { expect } from 'vitest'
import { describeContract, type ContractCase } from './contract-harness.ts'

const FIX_500 = 'legacy defect: a 500 (docs/contract.md)'
const CONTRACT = 'the contract forbids it (UserInput); the legacy stored zero values'

const SEED_USERS = [1, 2, 3].map((n) => ({ id: n, username: `user${n}`, email: `user${n}@example.com` }))

const cases: ContractCase[] = [
  { name: 'list', legacy: 200, check: (b) => expect((b as unknown[]).slice(0, 3)).toEqual(SEED_USERS) },
  { name: '?id=2', url: '/api/users?id=2', legacy: 200, response: { id: 2, username: 'user2', email: 'user2@example.com' } },
  { name: '?id=%2B2, i.e. +2 (strconv.Atoi takes a sign)', url: '/api/users?id=%2B2', legacy: 200, response: { id: 2 } },
  { name: '?id=+2, i.e. " 2" (a + in a query is a space)', url: '/api/users?id=+2', legacy: 500, port: { status: 400, why: FIX_500 } },
  { name: '?id=1&id=2: the first value', url: '/api/users?id=1&id=2', legacy: 200, response: { id: 1 } },
  { name: '?id= (empty) lists', url: '/api/users?id=', legacy: 200, check: (b) => expect(Array.isArray(b)).toBe(true) },
  { name: '?id=999999', url: '/api/users?id=999999', legacy: 500, port: { status: 404, why: FIX_500 }, error: /^user 999999 not found$/ },
  { name: '?id=0', url: '/api/users?id=0', legacy: 500, port: { status: 404, why: FIX_500 }, error: /^user 0 not found$/ },
  { name: '?id=-1', url: '/api/users?id=-1', legacy: 500, port: { status: 404, why: FIX_500 } },
  { name: '?id=abc', url: '/api/users?id=abc', legacy: 500, port: { status: 400, why: FIX_500 }, error: /^id must be an integer$/ },
  { name: '?id=1.5', url: '/api/users?id=1.5', legacy: 500, port: { status: 400, why: FIX_500 }, error: /\bid\b/ },
  { name: '?id=99999999999 (beyond INTEGER)', url: '/api/users?id=99999999999', legacy: 500, port: { status: 400, why: FIX_500 }, error: /\bid\b/ },

  { name: 'create', body: { username: 'neo{u}', email: 'neo{u}@matrix.io' }, legacy: 201, response: { username: 'neo{u}', email: 'neo{u}@matrix.io' } },
  { name: 'empty username', setup: (db) => db.query("DELETE FROM users WHERE username = ''"), body: { username: '', email: 'blank{u}@example.com' }, legacy: 201, response: { username: '' }, rule: 'user-username-non-empty' },
  { name: 'internationalised e-mail ю@пример.рф', body: { username: 'ю{u}', email: 'ю{u}@пример.рф' }, legacy: 201, response: { email: 'ю{u}@пример.рф' } },
  { name: 'unicode e-mail test@例え.テスト', body: { username: 'jp{u}', email: 'test{u}@例え.テスト' }, legacy: 201 },
  { name: 'unknown fields ignored', body: { username: 'x{u}', email: 'x{u}@example.com', password: 'p', id: 777 }, legacy: 201, response: { username: 'x{u}' } },
  { name: 'e-mail that is no address', body: { username: 'bad{u}', email: 'not-an-email' }, legacy: 201, port: { status: 400, why: 'format: email' }, error: /email/ },
  { name: 'e-mail without a domain', body: { username: 'bad{u}', email: 'user@' }, legacy: 201, port: { status: 400, why: 'format: email' }, error: /email/ },
  { name: 'missing email', body: { username: 'x{u}' }, legacy: 201, port: { status: 400, why: CONTRACT }, error: /email/ },
  { name: 'missing username', body: { email: 'y{u}@example.com' }, legacy: 201, port: { status: 400, why: CONTRACT }, error: /username/ },
  { name: 'username a number', body: { username: 1, email: 'z{u}@example.com' }, legacy: 201, port: { status: 400, why: CONTRACT }, error: /username/ },
  { name: 'username null', body: { username: null, email: 'n{u}@example.com' }, legacy: 201, port: { status: 400, why: CONTRACT }, error: /username/ },
  { name: 'duplicate username', body: { username: 'user1', email: 'dup{u}@example.com' }, legacy: 500, port: { status: 409, why: FIX_500 }, error: /^username already exists$/ },
  { name: 'duplicate email', body: { username: 'dup{u}', email: 'user1@example.com' }, legacy: 500, port: { status: 409, why: FIX_500 }, error: /^email already exists$/ },
  { name: 'username longer than VARCHAR(100)', body: { username: 'x'.repeat(101), email: 'l{u}@example.com' }, legacy: 500, port: { status: 400, why: FIX_500 }, error: /username/ },
  { name: 'NUL byte in username', body: { username: 'a\u0000{u}', email: 'nul{u}@example.com' }, legacy: 500, port: { status: 400, why: FIX_500 } },
  { name: 'JSON sent as a form (curl -d): Go never read Content-Type', raw: '{"username":"form{u}","email":"form{u}@example.com"}', contentType: 'application/x-www-form-urlencoded', legacy: 201, response: { username: 'form{u}' } },
  { name: 'JSON sent as text/plain', raw: '{"username":"text{u}","email":"text{u}@example.com"}', contentType: 'text/plain', legacy: 201 },
  { name: 'a real form body', raw: 'username=a&email=b', contentType: 'application/x-www-form-urlencoded', legacy: 400 },
  { name: 'malformed JSON', raw: '{"username":', legacy: 400 },
  { name: 'a JSON array', raw: '[]', legacy: 400 },
  { name: 'DELETE', method: 'DELETE', legacy: 405 },
]

describeContract(
  { path: '/api/users', shape: { id: 'integer', username: 'string', email: 'string' }, services: ['monolith'] },
  cases,
)
