// Live job changes: integration-job-events read with a fetch-based SSE client (EventSource
// cannot send the Authorization header). When the stream ends or the connection is lost it
// reconnects with Last-Event-ID (the server then replays what changed meanwhile) and tells
// the page to refetch.
import { fetchEventSource } from '../vendor/fetch-event-source/index.js';
import { ApiError, apiBase, getToken, sessionEnded } from './api.js';

class Fatal extends Error {}
class Retry extends Error {
  constructor(message, wait = null) { super(message); this.wait = wait; } // ms asked for, or null
}
const MAX_WAIT = 5 * 60 * 1000; // a longer Retry-After is cut to this

/** A Retry-After header (delta-seconds or an HTTP date) in ms; null when absent or unreadable. */
function retryAfterMs(value, now = Date.now()) {
  const text = (value || '').trim();
  if (!text) return null;
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now;
  return Number.isNaN(ms) ? null : Math.min(Math.max(ms, 0), MAX_WAIT);
}

/**
 * Follow a tenant's jobs. Callbacks: onJob(job), onState('connecting'|'live'|'reconnecting'|'off'),
 * onReconnect() after every reconnection. Returns a function that stops it.
 */
export function followJobs(tenantId, { onJob, onState, onReconnect }) {
  const controller = new AbortController();
  const url = new URL('integration-job-events', apiBase());
  url.searchParams.set('tenant_id', tenantId);
  let earlier = false; // a stream opened, or an attempt failed, before this one
  let delay = 500;
  onState('connecting');
  fetchEventSource(url.toString(), {
    signal: controller.signal,
    openWhenHidden: true,
    headers: { Authorization: 'Bearer ' + getToken() },
    async onopen(response) {
      const type = response.headers.get('content-type') || '';
      if (response.ok && type.startsWith('text/event-stream')) {
        delay = 500;
        onState('live');
        // Whatever changed while no stream was open (a 429, a dropped connection, the
        // gateway away) is refetched, even when this is the first stream that opened.
        if (earlier) onReconnect();
        earlier = true;
        return;
      }
      // A 401 (the token expired meanwhile) ends the session, as any other call's does.
      if (response.status === 401) sessionEnded(new ApiError(401, 'unauthorized', 'Sessão expirada.'));
      if (response.status === 401 || response.status === 403) throw new Fatal(String(response.status));
      // A 429 (the stream caps) or a 503 may say when to come back: Retry-After.
      throw new Retry(String(response.status), retryAfterMs(response.headers.get('retry-after')));
    },
    onmessage(message) {
      if (message.event === 'job' && message.data) onJob(JSON.parse(message.data));
    },
    onclose() { throw new Retry('closed'); }, // the server ended the stream: reconnect
    onerror(error) {
      if (error instanceof Fatal) { onState('off'); throw error; }
      earlier = true;
      onState('reconnecting');
      delay = Math.min(delay * 2, 8000);
      // Never sooner than the server asked (Retry-After), nor than our own backoff.
      return error instanceof Retry && error.wait !== null ? Math.max(delay, error.wait) : delay;
    },
  }).catch(() => onState('off'));
  return () => controller.abort();
}

// One stream at a time (the selected tenant's); pages subscribe to what it brings.
const jobHandlers = new Set();
const reconnectHandlers = new Set();
export const bus = {
  job(job) { jobHandlers.forEach((fn) => fn(job)); },
  reconnected() { reconnectHandlers.forEach((fn) => fn()); },
  onJob(fn) { jobHandlers.add(fn); return () => jobHandlers.delete(fn); },
  onReconnect(fn) { reconnectHandlers.add(fn); return () => reconnectHandlers.delete(fn); },
};
