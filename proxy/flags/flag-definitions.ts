// Flag definitions in Unleash's own formats, so the same file can be read by the proxy and
// moved to or from an Unleash server:
//   - the export format of Unleash (POST /api/admin/features-batch/export, one environment):
//     {features, featureStrategies, featureEnvironments, ...} — what flags/flags.json uses;
//   - the client API format (GET /api/client/features): {version, features: [{name, enabled, strategies}]}.
// Both become the client format, which unleash-client evaluates (bootstrap).
import type { ClientFeaturesResponse } from 'unleash-client'
import { Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

type Feature = ClientFeaturesResponse['features'][number]
type Strategy = NonNullable<Feature['strategies']>[number]

export class FlagsFileError extends Error {
  override readonly name = 'FlagsFileError'
}

/** The flag the original GRADUAL_MIGRATION / MOVIES_MIGRATION_PERCENT pair controls. */
export const LEGACY_ENV_FLAG = 'movies-migration'

const Params = Type.Record(Type.String(), Type.Unknown())
const StrategyShape = Type.Object({
  name: Type.String({ minLength: 1 }),
  parameters: Type.Optional(Params),
  constraints: Type.Optional(Type.Array(Type.Unknown())),
  segments: Type.Optional(Type.Array(Type.Unknown())),
  disabled: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
})
const ExportShape = Type.Object({
  features: Type.Array(Type.Object({ name: Type.String({ minLength: 1 }) })),
  featureStrategies: Type.Array(Type.Intersect([StrategyShape, Type.Object({ featureName: Type.String() })])),
  featureEnvironments: Type.Array(Type.Object({ featureName: Type.String(), environment: Type.String(), enabled: Type.Boolean() })),
})
const ClientShape = Type.Object({
  version: Type.Number(),
  features: Type.Array(Type.Object({ name: Type.String({ minLength: 1 }), enabled: Type.Boolean(), strategies: Type.Optional(Type.Array(StrategyShape)) })),
})

export type ExportDocument = {
  features: Array<{ name: string; [k: string]: unknown }>
  featureStrategies: Array<{ name: string; featureName: string; parameters?: Record<string, unknown>; constraints?: unknown[]; disabled?: boolean | null; [k: string]: unknown }>
  featureEnvironments: Array<{ featureName: string; environment: string; enabled: boolean; [k: string]: unknown }>
  [k: string]: unknown
}

export function isExportDocument(doc: unknown): doc is ExportDocument {
  return typeof doc === 'object' && doc !== null && 'featureStrategies' in doc
}

function firstErrors(schema: Parameters<typeof Value.Errors>[0], value: unknown): string {
  return [...Value.Errors(schema, value)].slice(0, 3).map((e) => `${e.path || '/'}: ${e.message}`).join('; ')
}

/** Reads either format into the client format; throws FlagsFileError naming the problem. */
export function toClientFeatures(doc: unknown): ClientFeaturesResponse {
  if (isExportDocument(doc)) {
    if (!Value.Check(ExportShape, doc)) throw new FlagsFileError(`not a valid Unleash export: ${firstErrors(ExportShape, doc)}`)
    const environments = [...new Set(doc.featureEnvironments.map((e) => e.environment))]
    if (environments.length > 1) {
      throw new FlagsFileError(`the export holds several environments (${environments.join(', ')}); export one environment`)
    }
    const features = doc.features.map((f): Feature => {
      const env = doc.featureEnvironments.find((e) => e.featureName === f.name)
      const strategies = doc.featureStrategies
        .filter((s) => s.featureName === f.name && s.disabled !== true)
        .map((s): Strategy => ({ name: s.name, parameters: s.parameters ?? {}, constraints: (s.constraints ?? []) as Strategy['constraints'] }))
      return { name: f.name, enabled: env?.enabled ?? false, strategies }
    })
    return { version: 2, features }
  }
  if (!Value.Check(ClientShape, doc)) {
    throw new FlagsFileError(`expected an Unleash export ({features, featureStrategies, featureEnvironments}) or client features ({version, features}): ${firstErrors(ClientShape, doc)}`)
  }
  return doc as ClientFeaturesResponse
}

const ROLLOUT_STRATEGIES: Record<string, string> = {
  flexibleRollout: 'rollout',
  gradualRolloutUserId: 'percentage',
  gradualRolloutSessionId: 'percentage',
  gradualRolloutRandom: 'percentage',
}

export interface RolloutShape {
  /** Share of identities the flag sends to the target, when the flag is a plain rollout; undefined for anything richer (constraints, several strategies). */
  percent: number | undefined
  /** Whether the same identity always gets the same answer (false for random stickiness). */
  sticky: boolean
}

/** What a flag definition means for a route, for display, metrics and the route reason. Evaluation itself is unleash-client's. */
export function rolloutOf(feature: Feature | undefined): RolloutShape {
  if (!feature || !feature.enabled) return { percent: 0, sticky: true }
  const strategies = feature.strategies ?? []
  if (strategies.length === 0) return { percent: 100, sticky: true }
  if (strategies.some((s) => s.name === 'default' && !(s.constraints?.length || s.segments?.length))) return { percent: 100, sticky: true }
  if (strategies.length > 1) return { percent: undefined, sticky: true }
  const [s] = strategies
  const param = ROLLOUT_STRATEGIES[s.name]
  if (!param || s.constraints?.length || s.segments?.length) return { percent: undefined, sticky: true }
  const percent = Number(s.parameters?.[param] ?? 0)
  const sticky = s.name !== 'gradualRolloutRandom' && s.parameters?.stickiness !== 'random'
  return { percent: Number.isFinite(percent) ? Math.min(100, Math.max(0, percent)) : undefined, sticky }
}

/** A plain sticky rollout of `percent` (groupId = flag name, as in flags/flags.json, so every source buckets users alike). */
export function rolloutFeature(flag: string, percent: number, enabled = true): Feature {
  return {
    name: flag,
    enabled,
    strategies: [{ name: 'flexibleRollout', parameters: { groupId: flag, rollout: String(percent), stickiness: 'default' }, constraints: [] }],
  }
}

/** Replaces (or adds) `flag` in client features. */
export function withFeature(features: ClientFeaturesResponse, feature: Feature): ClientFeaturesResponse {
  return { ...features, features: [...features.features.filter((f) => f.name !== feature.name), feature] }
}

/**
 * Sets `flag` to a plain rollout of `percent` in a flags file document (either format),
 * keeping everything else in it. Used by PUT /admin/routes/:name/rollout.
 */
export function setRolloutInDocument(doc: unknown, flag: string, percent: number): unknown {
  if (isExportDocument(doc)) {
    toClientFeatures(doc) // validates
    const next = structuredClone(doc)
    if (!next.features.some((f) => f.name === flag)) next.features.push({ name: flag, type: 'release', project: 'default', stale: false, impressionData: false, archived: false })
    const environment = next.featureEnvironments[0]?.environment ?? 'development'
    const env = next.featureEnvironments.find((e) => e.featureName === flag)
    if (env) env.enabled = true
    else next.featureEnvironments.push({ enabled: true, featureName: flag, environment, variants: [], name: flag })
    const existing = next.featureStrategies.find((s) => s.featureName === flag && s.name === 'flexibleRollout' && s.disabled !== true && !s.constraints?.length)
    const strategy = existing ?? { name: 'flexibleRollout', featureName: flag, title: null, constraints: [], variants: [], disabled: false, segments: [] }
    strategy.parameters = { groupId: flag, stickiness: 'default', ...(existing?.parameters ?? {}), rollout: String(percent) }
    // A rollout percentage means nothing next to other active strategies (they OR together).
    next.featureStrategies = [...next.featureStrategies.filter((s) => s.featureName !== flag), strategy]
    return next
  }
  const client = toClientFeatures(doc)
  const groupId = client.features.find((f) => f.name === flag)?.strategies?.find((s) => s.name === 'flexibleRollout')?.parameters?.groupId
  const feature = rolloutFeature(flag, percent)
  if (typeof groupId === 'string') feature.strategies![0].parameters.groupId = groupId
  return withFeature(client, feature)
}
