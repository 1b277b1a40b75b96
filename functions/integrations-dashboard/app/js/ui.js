// Small shared components: badges, progress, toasts, dialogs, tabs.
import { html, useCallback, useEffect, useRef, useState } from '../vendor/htm/preact-standalone.module.js';

export { html };

export function Badge({ color, children, testid }) {
  return html`<span class="badge ${color}" data-testid=${testid}>${children}</span>`;
}

export function Progress({ value, label }) {
  const v = Math.max(0, Math.min(100, Math.round(value || 0)));
  return html`<div class="progress">
    <progress max="100" value=${v} aria-label=${label || 'Progresso'}>${v}%</progress>
    <span aria-hidden="true">${v}%</span>
  </div>`;
}

// Toasts: informative ones are a status (polite), errors an alert.
let toastId = 0;
const toastListeners = new Set();
let toasts = [];
function emit() { toastListeners.forEach((fn) => fn(toasts)); }
export function notify(kind, text, ms = 7000) {
  const id = ++toastId;
  toasts = [...toasts, { id, kind, text }];
  emit();
  if (ms) setTimeout(() => dismiss(id), ms);
  return id;
}
export function dismiss(id) { toasts = toasts.filter((t) => t.id !== id); emit(); }

export function Toasts() {
  const [list, setList] = useState(toasts);
  useEffect(() => { toastListeners.add(setList); return () => toastListeners.delete(setList); }, []);
  const polite = list.filter((t) => t.kind !== 'error');
  const urgent = list.filter((t) => t.kind === 'error');
  const item = (t) => html`<div class="notice ${t.kind}" key=${t.id} data-testid="toast-${t.kind}">
      <span>${t.text}</span>
      <button type="button" aria-label="Fechar aviso" onClick=${() => dismiss(t.id)}>×</button>
    </div>`;
  return html`<div class="toasts">
    <div role="status" aria-live="polite">${polite.map(item)}</div>
    <div role="alert" aria-live="assertive">${urgent.map(item)}</div>
  </div>`;
}

/** A modal dialog (native <dialog>: focus moves in, Esc closes). */
export function Dialog({ title, open, onClose, children }) {
  const ref = useRef(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    if (open && !el.open) el.showModal();
    if (!open && el.open) el.close();
  }, [open]);
  const titleId = 'dlg-' + (title || '').replace(/\W+/g, '-');
  return html`<dialog ref=${ref} aria-labelledby=${titleId} onClose=${onClose}>
    <div class="row spread"><h2 id=${titleId}>${title}</h2>
      <button type="button" onClick=${onClose}>Fechar</button></div>
    ${open ? children : null}
  </dialog>`;
}

/** Tabs with the ARIA pattern: arrow keys, Home and End move between them. */
export function Tabs({ tabs, selected, onSelect, label }) {
  const refs = useRef({});
  const keys = tabs.map((t) => t.id);
  function onKey(e) {
    const i = keys.indexOf(selected);
    let next = null;
    if (e.key === 'ArrowRight') next = keys[(i + 1) % keys.length];
    if (e.key === 'ArrowLeft') next = keys[(i - 1 + keys.length) % keys.length];
    if (e.key === 'Home') next = keys[0];
    if (e.key === 'End') next = keys[keys.length - 1];
    if (next) { e.preventDefault(); onSelect(next); setTimeout(() => refs.current[next]?.focus()); }
  }
  return html`<div role="tablist" aria-label=${label} onKeyDown=${onKey}>
    ${tabs.map((t) => html`<button type="button" role="tab" id="tab-${t.id}" key=${t.id}
        ref=${(el) => { refs.current[t.id] = el; }}
        aria-selected=${t.id === selected ? 'true' : 'false'} aria-controls="panel-${t.id}"
        tabindex=${t.id === selected ? 0 : -1} onClick=${() => onSelect(t.id)}>${t.label}</button>`)}
  </div>`;
}

export function TabPanel({ id, children }) {
  return html`<section role="tabpanel" id="panel-${id}" aria-labelledby="tab-${id}" tabindex="0">${children}</section>`;
}

/** Re-render every `ms` (relative times, stalled jobs). */
export function useNow(ms = 5000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => { const t = setInterval(() => setNow(Date.now()), ms); return () => clearInterval(t); }, [ms]);
  return now;
}

/**
 * A page's requests in the order it made them, so that only the answer to the latest counts
 * (one asked before a filter changed or before a click can arrive after it): `ask()` before a
 * request makes it the latest, `now()` names the latest without replacing it (a follow-up
 * such as the next page), `holds(mine)` says whether it still is the latest.
 */
export function useLatest() {
  const last = useRef(0);
  const [latest] = useState(() => ({
    ask: () => ++last.current,
    now: () => last.current,
    holds: (mine) => mine === last.current,
  }));
  return latest;
}

/**
 * A page's writes one at a time per key (a double click sends one request, not two whose
 * refused second is told as an error after the first one's success). Held in a ref: both
 * clicks can come before the page draws the button disabled. `run(key, action)` does nothing
 * while that key's action is out; `busy(key)` says whether it is (for `disabled`).
 */
export function useOneAtATime() {
  const out = useRef(new Set());
  const [, redraw] = useState(0);
  const run = useCallback(async (key, action) => {
    if (out.current.has(key)) return undefined;
    out.current.add(key); redraw((n) => n + 1);
    try { return await action(); } finally { out.current.delete(key); redraw((n) => n + 1); }
  }, []);
  return { run, busy: (key) => out.current.has(key) };
}

/**
 * `read` one at a time: calls made while a read is out make one more read after it, not one
 * each (a burst of runs ending, or a reconnecting stream's replay, of many).
 */
export function coalesced(read) {
  let reading = false;
  let again = false;
  return async () => {
    if (reading) { again = true; return; }
    reading = true;
    try {
      do { again = false; await read(); } while (again);
    } finally { reading = false; }
  };
}

/**
 * Events the stream brought before a page's first answer landed: that answer may have been
 * read before them (the stream never sends them again), so they are applied to it when it
 * lands. `keep(job)` holds one; `take()` hands them over, oldest first, and forgets them.
 */
export function useEarlyEvents() {
  const held = useRef([]);
  const [early] = useState(() => ({
    keep: (job) => { held.current.push(job); },
    take: () => held.current.splice(0),
  }));
  return early;
}

/** The server's own (English) words, folded away for whoever fixes the project. */
export function TechDetail({ text }) {
  return html`<details><summary>Detalhe técnico</summary><span class="muted">${text}</span></details>`;
}

export function Notice({ kind = 'info', children, testid }) {
  const role = kind === 'error' ? 'alert' : 'status';
  return html`<div class="notice ${kind}" role=${role} data-testid=${testid}>${children}</div>`;
}
