// The proxy's per-request features that `npm run bench` prices one by one: the proxy runs with
// FEATURES_OFF naming some of them, and the bench compares its CPU per request with the proxy
// that has them all (proxy/README.md, "What each feature costs"). A measurement switch, never
// a way to run production: the proxy warns at start when any feature is off.
import { env } from '../../lib/config.ts'

export const MEASURED_FEATURES = [
  /** One JSON access line per request (also off with LOG_LEVEL above info). */
  'access-log',
  /** Per-client counters, in Redis or in process (also off with RATE_LIMIT_MAX=0). */
  'rate-limit',
  /** proxy_requests_total and proxy_request_duration_seconds per answer. */
  'metrics',
  /** Each upstream call through its opossum breaker (slow calls, failures in a row). */
  'breaker',
  /** The flag, the sticky identity and the read-your-writes look-up: every request goes to legacy. */
  'routing',
  /** The ramp guard's per-route, per-side traffic (rollout/ramp/traffic.ts). */
  'ramp-traffic',
  /** The console's per-route history (admin/traffic-history.ts). */
  'console-history',
  /** Asking whether this request is copied to the other side (shadowing off for every route). */
  'shadow-selection',
  /** X-Request-Id taken from the client or made, sent upstream and back. */
  'request-id',
  /** X-Forwarded-For/-Proto/-Host from the client's address as TRUST_PROXY resolves it. */
  'forwarding-headers',
] as const
export type MeasuredFeature = (typeof MEASURED_FEATURES)[number]

export const featuresOffEnv = env.subsetOf(
  'FEATURES_OFF',
  MEASURED_FEATURES,
  `measurement only (npm run bench): per-request features switched off to price each one; never in production. Among: ${MEASURED_FEATURES.join(', ')}`,
)
