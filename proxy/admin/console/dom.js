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

/**
 * Makes `target` look like `source` by changing only what differs (attributes, texts, missing or
 * extra children), so that the element holding the keyboard focus, a selection or the scroll
 * position stays in the page. Elements of another kind are replaced (with their listeners).
 */
export function patch(target, source) {
  if (target.nodeName !== source.nodeName) return target.replaceWith(source)
  if (target.nodeType === Node.TEXT_NODE) {
    if (target.nodeValue !== source.nodeValue) target.nodeValue = source.nodeValue
    return
  }
  for (const { name } of [...target.attributes]) if (!source.hasAttribute(name)) target.removeAttribute(name)
  for (const { name, value } of [...source.attributes]) if (target.getAttribute(name) !== value) target.setAttribute(name, value)
  const [have, want] = [[...target.childNodes], [...source.childNodes]]
  want.forEach((node, i) => (have[i] ? patch(have[i], node) : target.append(node)))
  for (const extra of have.slice(want.length)) extra.remove()
}

/** Keyed rows (`data-key`) of a table body updated in place: kept rows are patched, new ones inserted, gone ones removed, order followed. */
export function updateRows(tbody, rows) {
  const existing = new Map([...tbody.children].map((row) => [row.dataset.key, row]))
  rows.forEach((row, i) => {
    const old = existing.get(row.dataset.key)
    existing.delete(row.dataset.key)
    const node = old ?? row
    if (old) patch(old, row)
    if (tbody.children[i] !== node) tbody.insertBefore(node, tbody.children[i] ?? null)
  })
  for (const gone of existing.values()) gone.remove()
}

/** "1.5", "0", "—" for null. */
export const num = (value, digits = 2) => (value === null || value === undefined ? '—' : String(Math.round(value * 10 ** digits) / 10 ** digits))
export const pct = (value) => (value === null || value === undefined ? '—' : `${num(value, 1)}\u00a0%`)
