// Tracing is on only when the standard OTEL_* variables ask for it; off, nothing of the SDK is
// loaded or created (the SDK's loader is never called). The spans themselves are checked
// against a real Jaeger in test/e2e/tracing.test.ts.
import { describe, expect, it, vi } from 'vitest'
import { parseEnv, serverEnv } from '../../lib/config.ts'
import { startTracing, tracingRequested, type SdkLoader } from '../../lib/tracing/tracing.ts'

describe('tracing switch', () => {
  it('is on with OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, off without, off with OTEL_SDK_DISABLED=true', () => {
    expect(tracingRequested({})).toBe(false)
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: '' })).toBe(false)
    expect(tracingRequested({ OTEL_SERVICE_NAME: 'proxy', OTEL_TRACES_SAMPLER: 'always_on' })).toBe(false)
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318' })).toBe(true)
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://jaeger:4318/v1/traces' })).toBe(true)
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318', OTEL_SDK_DISABLED: 'TRUE' })).toBe(false)
  })

  it('with the variable unset, startTracing creates no exporter: the SDK is never loaded', async () => {
    const load = vi.fn<SdkLoader>(() => Promise.reject(new Error('the SDK must not be loaded')))
    expect(await startTracing('proxy', { OTEL_SERVICE_NAME: 'proxy' }, load)).toBeUndefined()
    expect(await startTracing('proxy', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' }, load)).toBeUndefined()
    expect(load).not.toHaveBeenCalled()
  })

  it('a bad tracing variable stops every service at start, named (serverEnv)', () => {
    expect(() => parseEnv(serverEnv, { OTEL_EXPORTER_OTLP_ENDPOINT: 'jaeger:4318' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/)
    expect(() => parseEnv(serverEnv, { OTEL_TRACES_SAMPLER: 'sometimes' })).toThrow(/OTEL_TRACES_SAMPLER must be one of/)
    expect(parseEnv(serverEnv, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318', OTEL_TRACES_SAMPLER: 'parentbased_traceidratio' })).toMatchObject({ otlpEndpoint: 'http://jaeger:4318' })
  })
})
