// How long a client may take, and how many may be connected: the Node server settings that keep
// a slowloris (headers trickled in), an idle crowd or a stalled upload from starving everyone.
// The body itself is bounded in request-body.ts (CLIENT_BODY_TIMEOUT_MS between two reads).
import type { ServerSettings } from '../../lib/http/create-app.ts'
import type { ProxyConfig } from '../config.ts'

export type ClientLimitSettings = Pick<ProxyConfig, 'clientHeadersTimeoutMs' | 'clientRequestTimeoutMs' | 'clientKeepAliveTimeoutMs'>

export function clientLimits(config: ClientLimitSettings): ServerSettings {
  return {
    http: {
      headersTimeout: config.clientHeadersTimeoutMs,
      requestTimeout: config.clientRequestTimeoutMs,
      // Node checks both timeouts on this interval (30 s by default, too coarse for a 10 s bound).
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(config.clientHeadersTimeoutMs / 4))),
    },
    requestTimeout: config.clientRequestTimeoutMs,
    keepAliveTimeout: config.clientKeepAliveTimeoutMs,
  }
}
