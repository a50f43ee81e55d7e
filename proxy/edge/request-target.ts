// One way to read a path: the request target is checked once, at the edge, before routing. A
// path an upstream, a load balancer or the router could read differently from the proxy is
// refused (400, CA_ERR_PATH_NOT_CANONICAL), never normalised: the proxy forwards the raw target,
// so the only safe form is one that every reader sees the same way. Refused:
//   dot segments           /api/../admin, /./x, /%2e%2e/ (raw or percent-encoded, any case)
//   encoded slashes        %2F, %5C (any case): one segment to us, two to a decoding upstream
//   empty segments         //admin (merged by some readers, not by others)
//   path parameters        ;jsessionid=..., /admin;x/state (cut by some readers)
//   fragments              # anywhere (never sent by a browser; cut by the router)
//   backslashes            \ (a slash to WHATWG URL parsers)
// The proxy's own namespaces are matched after that, case-insensitively and on the decoded path
// (reservedPrefix): /ADMIN/state and /%61dmin/state are /admin/state.

const DOT_SEGMENT = /\/(?:\.|%2e){1,2}(?=\/|$)/i
const ENCODED_SLASH = /%(?:2f|5c)/i

/** What makes `url` (a request target starting with "/") non-canonical, or undefined when it is canonical. */
export function targetProblem(url: string): string | undefined {
  if (url.includes('#')) return 'a fragment (#)'
  const q = url.indexOf('?')
  const path = q < 0 ? url : url.slice(0, q)
  if (path.includes('\\')) return 'a backslash'
  if (path.includes('//')) return 'an empty segment (//)'
  if (path.includes(';')) return 'a path parameter (;)'
  if (path.includes('%') && ENCODED_SLASH.test(path)) return 'an encoded slash (%2F or %5C)'
  if (path.includes('.') || path.includes('%')) {
    if (DOT_SEGMENT.test(path)) return 'a dot segment (. or ..)'
  }
  return undefined
}

/** The path of `url` as a router that decodes and folds case would see it ("/a%42c" → "/abc"). */
function foldedPath(url: string): string {
  const q = url.indexOf('?')
  const path = q < 0 ? url : url.slice(0, q)
  if (!path.includes('%')) return path.toLowerCase()
  try {
    return decodeURIComponent(path).toLowerCase()
  } catch {
    return path.toLowerCase()
  }
}

/**
 * Which of `prefixes` (lower case, e.g. "/admin") the path of `url` falls under — the prefix
 * itself or anything below it, in any case and percent-encoding — or undefined.
 */
export function reservedPrefix(url: string, prefixes: readonly string[]): string | undefined {
  const path = foldedPath(url)
  for (const prefix of prefixes) {
    if (!path.startsWith(prefix)) continue
    const next = path.charCodeAt(prefix.length)
    if (Number.isNaN(next) || next === 47 /* "/" */) return prefix
  }
  return undefined
}
