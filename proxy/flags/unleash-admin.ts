// Rollout changes written to Unleash through its Admin API, so the Unleash UI (and its event
// log) shows every change the proxy makes: the flag's flexibleRollout strategy in one
// environment gets the new `rollout`; a flag without one gets one. Every call is bounded by a
// timeout; an unreachable or refusing Unleash is FLAG_WRITE_FAILED (502), a flag the proxy must
// not rewrite (missing, or richer than a plain rollout) FLAG_CHANGE_REFUSED (409).
import type { ClientFeaturesResponse } from 'unleash-client'
import { errors } from '../../lib/errors.ts'

type Feature = ClientFeaturesResponse['features'][number]

export interface UnleashAdminOptions {
  /** Admin API base, e.g. http://unleash:4242/api/admin. */
  url: string
  token: string
  project: string
  environment: string
  timeoutMs: number
}

interface AdminStrategy {
  id: string
  name: string
  parameters?: Record<string, string>
  constraints?: unknown[]
  segments?: number[]
  disabled?: boolean | null
  title?: string | null
  variants?: unknown[]
}

interface AdminFeature {
  environments?: Array<{ name: string; enabled: boolean; strategies?: AdminStrategy[] }>
}

export interface UnleashAdmin {
  /** Writes a plain rollout of `percent` to `flag` and answers the definition Unleash now serves. */
  setRollout(flag: string, percent: number): Promise<Feature>
}

export function createUnleashAdmin(opts: UnleashAdminOptions): UnleashAdmin {
  const base = opts.url.replace(/\/+$/, '')
  const where = `Unleash project "${opts.project}", environment "${opts.environment}"`

  async function call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T | undefined }> {
    let res: Response
    let text: string
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: opts.token, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(opts.timeoutMs),
      })
      text = await res.text()
    } catch (error) {
      const reason = (error as Error).name === 'TimeoutError' ? `no answer within ${opts.timeoutMs} ms` : (error as Error).message
      throw new errors.FLAG_WRITE_FAILED(`Unleash Admin API unreachable (${method} ${path}): ${reason}`)
    }
    if (res.status === 401 || res.status === 403) throw new errors.FLAG_WRITE_FAILED(`Unleash refused the admin token (UNLEASH_ADMIN_TOKEN) with ${res.status} on ${method} ${path}`)
    if (res.status === 404) return { status: 404, json: undefined }
    if (!res.ok) throw new errors.FLAG_WRITE_FAILED(`Unleash answered ${res.status} to ${method} ${path}: ${text.slice(0, 200)}`)
    return { status: res.status, json: text ? (JSON.parse(text) as T) : undefined }
  }

  return {
    async setRollout(flag, percent) {
      const feature = `/projects/${encodeURIComponent(opts.project)}/features/${encodeURIComponent(flag)}`
      const strategies = `${feature}/environments/${encodeURIComponent(opts.environment)}/strategies`
      const found = await call<AdminFeature>('GET', feature)
      if (found.status === 404) throw new errors.FLAG_CHANGE_REFUSED(`flag ${flag} does not exist in ${where}: create it in Unleash first`)
      const env = found.json?.environments?.find((e) => e.name === opts.environment)
      if (!env) throw new errors.FLAG_CHANGE_REFUSED(`flag ${flag} has no environment "${opts.environment}" in Unleash (UNLEASH_ENVIRONMENT)`)
      const active = (env.strategies ?? []).filter((s) => s.disabled !== true)
      const plain = (s: AdminStrategy) => s.name === 'flexibleRollout' && !s.constraints?.length && !s.segments?.length
      // Other active strategies OR with a rollout: a percentage would not mean what it says.
      if (active.length > 1 || (active.length === 1 && !plain(active[0]!))) {
        throw new errors.FLAG_CHANGE_REFUSED(`flag ${flag} in ${where} is more than a plain rollout (${active.map((s) => s.name).join(', ')}): change it in Unleash`)
      }
      const existing = active[0]
      const parameters = { groupId: flag, stickiness: 'default', ...(existing?.parameters ?? {}), rollout: String(percent) }
      const body = { name: 'flexibleRollout', title: existing?.title ?? undefined, constraints: [], segments: [], parameters, variants: existing?.variants ?? [], disabled: false }
      const written = existing ? await call('PUT', `${strategies}/${encodeURIComponent(existing.id)}`, body) : await call('POST', strategies, body)
      if (written.status === 404) throw new errors.FLAG_CHANGE_REFUSED(`flag ${flag} vanished from ${where} while the proxy changed it`)
      if (!env.enabled) {
        const on = await call('POST', `${feature}/environments/${encodeURIComponent(opts.environment)}/on`)
        if (on.status === 404) throw new errors.FLAG_CHANGE_REFUSED(`flag ${flag} vanished from ${where} while the proxy changed it`)
      }
      return { name: flag, enabled: true, strategies: [{ name: 'flexibleRollout', parameters, constraints: [] }] }
    },
  }
}
