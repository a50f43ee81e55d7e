// A route's shadow settings as written: in the route map (`"shadow": {...}` on a route with a target) and
// changed at run time through PUT /admin/routes/:name/shadow. Checked where they are read, with
// the offending field named.
import { Type, type Static } from '@sinclair/typebox'
import { HTTP_METHODS } from '../../lib/http/errors.ts'
import { parsePathRule } from './json-path.ts'

const HeaderName = Type.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$" })

/** As written in routes.json. */
export const ShadowEntry = Type.Object(
  {
    /** Share (0-100) of the route's eligible requests copied to the side the flag did not pick. */
    percent: Type.Number({ minimum: 0, maximum: 100 }),
    /** JSON paths whose differences are noise: `$.a.b`, `$.items[*].updated_at`, `$..etag`. */
    ignore: Type.Optional(Type.Array(Type.String({ minLength: 2, maxLength: 200 }), { maxItems: 100 })),
    /** Response headers not compared (date, etag, content-length... never are). */
    ignoreHeaders: Type.Optional(Type.Array(HeaderName, { maxItems: 50 })),
    /** Response headers compared on top of those describing the content (content-type, cache-control, location, CORS...). */
    compareHeaders: Type.Optional(Type.Array(HeaderName, { maxItems: 50 })),
    /** Methods copied; default GET and HEAD. A method that changes data is copied only when listed here. */
    methods: Type.Optional(Type.Array(Type.Union(HTTP_METHODS.map((m) => Type.Literal(m))), { minItems: 1, uniqueItems: true })),
    /**
     * Diffy-style: on a mismatch, ask legacy a second time; a scalar leaf on which the two legacy answers
     * differ, in `noiseConfirmations` different requests, is learned as noise for `noiseTtlSeconds`
     * (proxy/rollout/shadow/noise.ts says what can never be learned).
     */
    detectNoise: Type.Optional(Type.Boolean()),
    /** Different requests in which the same leaf must differ before it is noise; default 3. */
    noiseConfirmations: Type.Optional(Type.Integer({ minimum: 2, maximum: 1_000 })),
    /** Confirmations older than this no longer count; default 600. */
    noiseWindowSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
    /** How long a learned rule lasts; default 3600. */
    noiseTtlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 604_800 })),
  },
  { additionalProperties: false },
)
export type ShadowEntry = Static<typeof ShadowEntry>

/** Checks the JSON paths (the schema checked the rest); problems name `at/ignore/<i>`. */
export function shadowProblems(entry: ShadowEntry, at: string): string[] {
  const problems: string[] = []
  ;(entry.ignore ?? []).forEach((source, i) => {
    try {
      parsePathRule(source)
    } catch (error) {
      problems.push(`${at}/ignore/${i}: ${(error as Error).message}`)
    }
  })
  return problems
}
