// The admin API as the page calls it: the token from this tab's sessionStorage as the Bearer
// header, JSON in and out, at most FETCH_TIMEOUT_MS per call. An answer is
// { ok, status, body, error, code, missing }: decisions are taken on `code`, the error
// catalogue's stable code (docs/errors.md), never on the text; `missing` is true when the proxy
// has no such endpoint at all (CA_ERR_NO_ROUTE), as opposed to a 404 about a thing (CA_ERR_NO_RAMP).
const KEY = 'cinemaabyss-admin-token'
const FETCH_TIMEOUT_MS = 5000

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
}

export class Unauthorized extends Error {}

export async function api(path, { method = 'GET', body, bearer = token.get() } = {}) {
  const headers = { accept: 'application/json', authorization: `Bearer ${bearer ?? ''}` }
  if (body !== undefined) headers['content-type'] = 'application/json'
  let res
  let text
  try {
    const signal = AbortSignal.timeout(FETCH_TIMEOUT_MS)
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store', signal })
    text = await res.text()
  } catch (error) {
    if (error?.name === 'TimeoutError') throw new Error(`the proxy did not answer ${method} ${path} within ${FETCH_TIMEOUT_MS / 1000} s`, { cause: error })
    throw error
  }
  let json
  try {
    json = text ? JSON.parse(text) : undefined
  } catch {
    json = undefined
  }
  const error = res.ok ? undefined : (json && typeof json.error === 'string' ? json.error : `${res.status} ${res.statusText}`)
  const code = res.ok || typeof json?.code !== 'string' ? undefined : json.code
  if (res.status === 401) throw new Unauthorized(error)
  const missing = code === 'CA_ERR_NO_ROUTE'
  return { ok: res.ok, status: res.status, body: json, error, code, missing }
}

export const routePath = (name, rest) => `/admin/routes/${encodeURIComponent(name)}/${rest}`
