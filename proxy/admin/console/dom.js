// A tiny element builder: h('td', { class: 'x', 'data-col': 'y' }, 'text', child). Text is
// always set as text (never parsed as HTML).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value)
    else el.setAttribute(name, value === true ? '' : String(value))
  }
  for (const child of children.flat()) if (child !== undefined && child !== null) el.append(child instanceof Node ? child : String(child))
  return el
}

export const $ = (selector) => document.querySelector(selector)

/** "1.5", "0", "—" for null. */
export const num = (value, digits = 2) => (value === null || value === undefined ? '—' : String(Math.round(value * 10 ** digits) / 10 ** digits))
export const pct = (value) => (value === null || value === undefined ? '—' : `${num(value, 1)}\u00a0%`)
