// The key a client is counted under (rate-limit.ts, the admin login back-off): its IPv4 address,
// or the /64 of its IPv6 address. One IPv6 host is usually given a whole /64 and can pick a new
// address in it for every request, so a per-address key would give it 2^64 buckets.
import { isIPv6 } from 'node:net'

/** "2001:db8:1:2:a:b:c:d" → "2001:db8:1:2::/64"; IPv4 (and IPv4-mapped IPv6) as is. */
export function clientKey(address: string): string {
  if (!address.includes(':') || !isIPv6(address)) return address
  const lower = address.toLowerCase()
  if (lower.startsWith('::ffff:') && lower.includes('.')) return lower.slice(7)
  return `${firstFourGroups(lower)}::/64`
}

/** The first four 16-bit groups of an IPv6 address, each without leading zeros. */
function firstFourGroups(address: string): string {
  const zone = address.indexOf('%')
  const bare = zone < 0 ? address : address.slice(0, zone)
  const [head = '', tail] = bare.split('::')
  const headGroups = head === '' ? [] : head.split(':')
  // A trailing dotted quad is two groups; only the first four matter here, so it counts as two.
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]))
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill('0'), ...tailGroups]
  return groups
    .slice(0, 4)
    .map((g) => (g.includes('.') ? '0' : g.replace(/^0+(?=.)/, '')))
    .join(':')
}
