// Running a piece of work inside a span of our own (the instrumentations make theirs).
import { context, SpanStatusCode, trace, type Context, type SpanOptions, type Tracer } from '@opentelemetry/api'

/**
 * Runs `work` in a new span, child of `parent` (and active while it runs: spans and log lines
 * made inside belong to it); the span ends when `work` settles, marked failed if it throws.
 */
export async function inSpan<T>(tracer: Tracer, name: string, options: SpanOptions, parent: Context, work: () => Promise<T>): Promise<T> {
  const span = tracer.startSpan(name, options, parent)
  try {
    return await context.with(trace.setSpan(parent, span), work)
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message })
    throw error
  } finally {
    span.end()
  }
}
