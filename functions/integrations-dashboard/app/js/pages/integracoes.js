// Integrações: one card per integration, its last run live (seed 001's page).
import { html, useCallback, useEffect, useMemo, useState } from '../../vendor/htm/preact-standalone.module.js';
import { api, describe } from '../api.js';
import { JOB_STATUS, fmtDateTime, fmtTime, isLive } from '../format.js';
import { fmtFreshness, isStalled, loadMetrics, newestJob, retryingAt, runIntegration } from '../jobs.js';
import { bus } from '../live.js';
import { Badge, Dialog, Notice, Progress, coalesced, useEarlyEvents, useLatest, useNow } from '../ui.js';

/**
 * The latest run's status, a live region (polite): a screen reader hears it change, not only
 * the colour; `name` (the integration's, visually hidden) says whose when it is not nearby.
 */
export function StatusBadge({ job, name }) {
  const s = job ? JOB_STATUS[job.status] || { label: job.status, color: 'gray' }
    : { label: 'Nunca executado', color: 'gray' };
  return html`<span role="status">${name && html`<span class="visually-hidden">${name}: </span>`}<${Badge}
    color=${s.color} testid="status">${s.label}</${Badge}></span>`;
}

export function withJob(items, job) {
  return items.map((it) => {
    if (it.provider_slug !== job.provider_slug || newestJob(it.latest_job, job) !== job) return it;
    const done = !isLive(job) && job.finished_at;
    return {
      ...it, latest_job: job,
      ...(done ? { last_run: job.finished_at, last_status: job.status, last_error: job.error_message } : {}),
    };
  });
}

/** A refetched list whose cards keep the job they show when it is newer than the list's. */
export function withHeldJobs(listed, held) {
  if (!held) return listed;
  return listed.map((it) => {
    const shown = held.find((h) => h.provider_slug === it.provider_slug)?.latest_job;
    return shown ? withJob([it], shown)[0] : it;
  });
}

// The schedules could not be read: the card says so, not that there is none.
const UNREAD = Symbol('unread');
function nextRun(schedule) {
  if (schedule === UNREAD) return 'Agendamento não disponível no momento';
  return schedule && schedule.next_run_at ? fmtDateTime(schedule.next_run_at) : 'Sem agendamento';
}

function Card({ tenant, item, schedule, freshness, now, onJob, onShowError }) {
  const job = item.latest_job;
  const live = isLive(job);
  const admin = tenant.role === 'admin';
  const retry = retryingAt(job, now);
  const headingId = `card-${item.provider_slug}`;
  async function run() {
    const started = await runIntegration(tenant.id, item.provider_slug);
    if (started) onJob(started);
  }
  return html`<article class="card" aria-labelledby=${headingId} data-provider=${item.provider_slug}>
    <header>
      <h2 id=${headingId}>${item.display_name}</h2>
      ${item.runnable && html`<${StatusBadge} job=${job} name=${item.display_name} />`}
    </header>
    <dl>
      <dt>Situação</dt><dd>${item.enabled ? 'Habilitada' : 'Desabilitada'}</dd>
      <dt>Última execução</dt><dd>${fmtDateTime(item.last_run)}</dd>
      <dt>Próxima agendada</dt><dd data-testid="next-run">${nextRun(schedule)}</dd>
      ${freshness && html`<dt>Dados atualizados</dt><dd>${freshness}</dd>`}
    </dl>
    ${live && html`<${Progress} value=${job.progress} label="Progresso de ${item.display_name}" />`}
    ${retry && html`<p class="muted">Nova tentativa às ${fmtTime(retry)} (tentativa ${job.attempts + 1} de ${job.max_attempts}).</p>`}
    ${isStalled(job, now) && html`<${Notice} kind="warn" testid="stalled">Fila aguardando reprocessamento</${Notice}>`}
    <footer>
      ${item.runnable
        ? html`<button type="button" class="primary" data-action="run" disabled=${live || !item.enabled || !admin}
            title=${admin ? '' : 'Somente administradores podem executar'} onClick=${run}>Executar</button>`
        : html`<a class="button" href="#/t/${tenant.id}/sync-monitor">Abrir Sync Monitor</a>`}
      ${job && job.status === 'error' && html`<button type="button" class="danger" data-action="show-error"
          onClick=${() => onShowError(item, job)}>Ver erro</button>`}
      ${item.runnable && html`<a class="button" href="#/t/${tenant.id}/integracoes/${item.provider_slug}">Detalhes</a>`}
    </footer>
  </article>`;
}

export function Integracoes({ tenant }) {
  const [items, setItems] = useState(null);
  const [schedules, setSchedules] = useState({}); // null: not read (a failed read)
  const [metrics, setMetrics] = useState({});
  const [error, setError] = useState(null);
  const [shownError, setShownError] = useState(null);
  const now = useNow(5000);
  const early = useEarlyEvents();
  const latest = useLatest();

  // The cards' freshness: read with the list, and again when a run ends (its success makes
  // the data fresh). Only the answer to the latest read counts. Runs ending while a read is
  // out make one more read after it, not one each (a burst, or a stream's replay, of many).
  const loadFreshness = useMemo(() => coalesced(async () => {
    const mine = latest.ask();
    const m = await loadMetrics(tenant.id);
    if (latest.holds(mine)) {
      setMetrics(m && !m.unavailable ? Object.fromEntries((m.providers || []).map((p) => [p.provider_slug, p])) : {});
    }
  }), [tenant.id]);
  // The cards' last and next runs: read again when a run ends or a schedule makes one, as
  // the freshness is (one read after those that came while one was out).
  const loadSchedules = useMemo(() => coalesced(() => api('integration-schedules', { query: { tenant_id: tenant.id } })
    .then((s) => setSchedules(Object.fromEntries(s.schedules.map((x) => [x.provider_slug, x])))).catch(() => {})), [tenant.id]);

  const load = useCallback(async () => {
    try {
      const [listed, sched] = await Promise.all([
        api('list-integrations', { query: { tenant_id: tenant.id } }),
        api('integration-schedules', { query: { tenant_id: tenant.id } }).catch(() => null),
      ]);
      setItems((held) => early.take().reduce(withJob, withHeldJobs(listed.integrations, held)));
      setSchedules(sched && Object.fromEntries(sched.schedules.map((s) => [s.provider_slug, s])));
      setError(null);
    } catch (err) { setError(describe(err)); }
    await loadFreshness();
  }, [tenant.id, loadFreshness]);

  useEffect(() => { setItems(null); load(); }, [load]);
  useEffect(() => bus.onJob((job) => {
    if (job.tenant_id !== tenant.id) return;
    setItems((list) => {
      if (list) return withJob(list, job);
      early.keep(job);
      return list;
    });
    if (job.trigger === 'schedule' || !isLive(job)) loadSchedules();
    if (!isLive(job)) loadFreshness();
  }), [tenant.id, loadFreshness, loadSchedules]);
  useEffect(() => bus.onReconnect(load), [load]);

  function onJob(job) {
    setItems((list) => withJob(list, job));
    setTimeout(load, 1500); // a short refetch, in case an event is late
  }

  return html`<div class="row spread"><h1>Integrações</h1><span class="muted">${tenant.name}</span></div>
    ${error && html`<${Notice} kind="error">${error}</${Notice}>`}
    ${!items && !error && html`<p role="status">Carregando integrações…</p>`}
    ${items && items.length === 0 && html`<${Notice}>Nenhuma integração configurada para esta organização.</${Notice}>`}
    ${items && html`<div class="cards">
      ${items.map((item) => html`<${Card} key=${item.provider_slug} tenant=${tenant} item=${item} now=${now}
          schedule=${schedules ? schedules[item.provider_slug] : UNREAD} freshness=${fmtFreshness(metrics[item.provider_slug]?.freshness, now)}
          onJob=${onJob} onShowError=${(it, job) => setShownError({ it, job })} />`)}
    </div>`}
    <${Dialog} title="Erro da última execução" open=${!!shownError} onClose=${() => setShownError(null)}>
      ${shownError && html`<p><strong>${shownError.it.display_name}</strong> · ${fmtDateTime(shownError.job.finished_at)}
        ${' · '}tentativa ${shownError.job.attempts} de ${shownError.job.max_attempts}</p>
        <pre data-testid="error-message">${shownError.job.error_message || shownError.it.last_error || 'Sem mensagem.'}</pre>`}
    </${Dialog}>`;
}
