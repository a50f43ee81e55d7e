// unleash-client 6 fetches through make-fetch-happen, which can leave a rejection of its
// minipass-fetch call unhandled while it retries (npm/make-fetch-happen#315, open): when Unleash
// is unreachable, a FetchError for /api/client/... surfaces as an unhandled rejection although
// the polling fetch reports the same failure as an 'error' event (logged as "Unleash
// unavailable", counted in proxy_flag_source_up). Node's default would crash the proxy on it —
// an Unleash outage must never take the edge down — so server.ts, and the test runner, ignore
// exactly these and nothing else.

/** A stray rejection of unleash-client's HTTP calls to the Unleash API. */
export function isStrayUnleashFetchRejection(reason: unknown): boolean {
  const error = reason as { name?: unknown; message?: unknown } | null | undefined
  return error?.name === 'FetchError' && typeof error.message === 'string' && /^request to \S+\/client\/(features|register|metrics)\S* failed/.test(error.message)
}
