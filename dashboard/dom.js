// A tiny element builder: text always goes in as text (never as HTML), so a job's input cannot inject markup.

/** h('a', { href: '#/' }, 'text', child) → an element; attributes starting with "on" become listeners. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'className') element.className = value;
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** A date as local time, to the second. */
export function time(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(undefined, { hour12: false });
}

/** A JSON value shown readably. */
export function json(value) {
  return value === null || value === undefined ? '—' : JSON.stringify(value, null, 2);
}

export function progressBar(progress, label, wide = false) {
  const bar = h('progress', { max: 1, value: progress ?? 0, 'aria-label': label, className: wide ? 'wide' : undefined });
  bar.textContent = `${Math.round((progress ?? 0) * 100)}%`;
  return bar;
}

export const STATUSES = ['QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'];
export const FINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
