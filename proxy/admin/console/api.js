// The admin API as the page calls it: the token from this tab's sessionStorage as the Bearer
// header, JSON in and out. An answer is { ok, status, body, error, missing }: `missing` is true
// when the proxy has no such endpoint at all (its 404 "no route for ..."), as opposed to a 404
// about a thing (e.g. no ramp on that route).
const KEY = 'cinemaabyss-admin-token'

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
}

export class Unauthorized extends Error {}

export async function api(path, { method = 'GET', body, bearer = token.get() } = {}) {
  const headers = { accept: 'application/json', authorization: `Bearer ${bearer ?? ''}` }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' })
  const text = await res.text()
  let json
  try {
    json = text ? JSON.parse(text) : undefined
  } catch {
    json = undefined
  }
  const error = res.ok ? undefined : (json && typeof json.error === 'string' ? json.error : `${res.status} ${res.statusText}`)
  if (res.status === 401) throw new Unauthorized(error)
  const missing = res.status === 404 && typeof error === 'string' && error.startsWith('no route for ')
  return { ok: res.ok, status: res.status, body: json, error, missing }
}

export const routePath = (name, rest) => `/admin/routes/${encodeURIComponent(name)}/${rest}`
