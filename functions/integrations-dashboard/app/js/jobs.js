// What the Integrações cards and the Detalhe page share: running, merging live rows, stalls.
import { api, describe } from './api.js';
import { FRESHNESS, fmtAgo, isLive } from './format.js';
import { notify } from './ui.js';

/** A pending job due for longer than this (s) is waiting for the sweep to pick it up. */
export function stallSeconds() {
  return Number(localStorage.getItem('syncq.stallSeconds')) || 120;
}

export function isStalled(job, now = Date.now()) {
  return !!job && job.status === 'pending' && now - Date.parse(job.run_after) > stallSeconds() * 1000;
}

export function retryingAt(job, now = Date.now()) {
  return job && job.status === 'pending' && job.attempts > 0 && Date.parse(job.run_after) > now
    ? job.run_after : null;
}

/** Is `job` the integration's newest (the same job, or one created later)? */
export function supersedes(job, latest) {
  if (!latest) return true;
  if (job.id === latest.id) return true;
  return Date.parse(job.created_at) >= Date.parse(latest.created_at);
}

/**
 * Which of two copies of the integration's latest job to show: a live event and a refetch
 * answer arrive in either order, and a refetch read before the job's last change must not
 * undo it (the stream does not send that change again). Of two copies of one job, a finished
 * one wins (a job never comes back from success, error or canceled), else the later
 * `updated_at`; of two jobs, the one created later.
 */
export function newestJob(held, arrived) {
  if (!held) return arrived;
  if (!arrived) return held;
  if (held.id !== arrived.id) return supersedes(arrived, held) ? arrived : held;
  if (isLive(held) !== isLive(arrived)) return isLive(held) ? arrived : held;
  return Date.parse(arrived.updated_at) >= Date.parse(held.updated_at) ? arrived : held;
}

/**
 * Click "Executar" (or "Tentar novamente" on a failed run: `retryOf` is its id): 202 -> the
 * pending job; 409 job_already_active -> an informative notice.
 */
export async function runIntegration(tenantId, slug, retryOf = null) {
  try {
    const body = { tenant_id: tenantId, provider_slug: slug };
    if (retryOf) body.retry_of = retryOf;
    const started = await api('run-integration', { method: 'POST', body });
    notify('success', retryOf ? 'Nova tentativa enfileirada.' : 'Execução enfileirada.');
    const now = new Date().toISOString();
    return {
      id: started.job_id, tenant_id: tenantId, provider_slug: slug, status: started.status,
      progress: 0, attempts: 0, max_attempts: 3, created_at: now, run_after: now,
      updated_at: new Date(0).toISOString(), // any copy from the server is newer, whatever the clocks
      trigger: retryOf ? 'retry' : 'manual',
    };
  } catch (err) {
    if (err.code === 'job_already_active') {
      notify('info', 'Já existe uma execução em andamento');
      return null;
    }
    notify('error', describe(err));
    return null;
  }
}

export async function cancelJob(jobId) {
  try {
    const job = await api('cancel-integration-job', { method: 'POST', body: { job_id: jobId } });
    notify('info', job.status === 'canceled' ? 'Execução cancelada.' : 'Cancelamento solicitado: a execução para na próxima verificação (se terminar antes, fica concluída).');
    return job;
  } catch (err) {
    notify('error', describe(err));
    return null;
  }
}

/** Freshness as metrics may give it: seconds since the last success, a time, or a word. */
export function fmtFreshness(value, now = Date.now()) {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return fmtAgo(now - value * 1000, now);
  if (typeof value === 'string') {
    if (FRESHNESS[value]) return FRESHNESS[value];
    return Number.isNaN(Date.parse(value)) ? value : fmtAgo(value, now);
  }
  if (typeof value === 'object') return value.label || value.status || fmtFreshness(value.seconds ?? value.age_s, now);
  return String(value);
}

/** integration-metrics, or null when it is not deployed here (404) or fails. */
export async function loadMetrics(tenantId, providerSlug) {
  try {
    return await api('integration-metrics', { query: { tenant_id: tenantId, days: 30, provider_slug: providerSlug } });
  } catch (err) {
    return { unavailable: true, status: err.status, message: describe(err) };
  }
}
