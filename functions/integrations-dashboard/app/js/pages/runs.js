// Execuções: the job history, filtered by status and trigger, keyset-paged, live.
import { html, useCallback, useEffect, useRef, useState } from '../../vendor/htm/preact-standalone.module.js';
import { api, describe } from '../api.js';
import { JOB_STATUS, TRIGGERS, fmtDateTime, fmtDuration, fmtNumber, isLive } from '../format.js';
import { cancelJob, newestJob, runIntegration } from '../jobs.js';
import { bus } from '../live.js';
import { Badge, Dialog, Notice, Progress, notify, useEarlyEvents, useLatest, useOneAtATime } from '../ui.js';

const PAGE = 20;
const MOST = 200; // the most rows list-integration-jobs answers at once
const ALL_PENDING = 'all-pending'; // "Cancelar todos os pendentes" among the runs' actions
const MORE = 'more'; // "Carregar mais"

function matches(job, filters) {
  return (!filters.status || job.status === filters.status) && (!filters.trigger || job.trigger === filters.trigger);
}

/** A refetched page in which each job the list already shows keeps its newer copy. */
function withNewest(jobs, held, filters) {
  if (!held) return jobs;
  return jobs.map((j) => newestJob(held.find((h) => h.id === j.id), j)).filter((j) => matches(j, filters));
}

/** The list with a job the stream brought: its newer copy, or a new run on top. */
function withEvent(list, job, filters) {
  if (list.some((j) => j.id === job.id)) {
    return list.map((j) => (j.id === job.id ? newestJob(j, job) : j)).filter((j) => matches(j, filters));
  }
  const newest = list[0];
  if (matches(job, filters) && (!newest || Date.parse(job.created_at) >= Date.parse(newest.created_at))) return [job, ...list];
  return list;
}

export function Runs({ tenant, slug, submitted = 0 }) {
  const [filters, setFilters] = useState({ status: '', trigger: '' });
  const [rows, setRows] = useState(null);
  const [next, setNext] = useState(null);
  const [error, setError] = useState(null);
  const [shown, setShown] = useState(null);
  const [busy, setBusy] = useState(false);
  const admin = tenant.role === 'admin';

  const fetchPage = useCallback((before, limit = PAGE) => api('list-integration-jobs', {
    query: { tenant_id: tenant.id, provider_slug: slug, status: filters.status, trigger: filters.trigger, limit, before },
  }), [tenant.id, slug, filters]);
  const onScreen = useRef(0); // rows shown: a refetch after a reconnection reads as many
  useEffect(() => { onScreen.current = rows ? rows.length : 0; }, [rows]);
  // Rows asked for: the first page and one more per "Carregar mais". New runs go on top; a
  // table left open keeps that many, the older ones one "Carregar mais" away again.
  const wanted = useRef(PAGE);
  useEffect(() => {
    if (!rows || rows.length <= wanted.current) return;
    const kept = rows.slice(0, wanted.current);
    setRows((list) => (list === rows ? kept : list)); // changed meanwhile: its own turn comes
    setNext(kept[kept.length - 1].id);
  }, [rows]);

  // An answer asked before a filter changed (or before a refetch) and arriving after it would
  // fill the table with the wrong rows: only the latest counts.
  const latest = useLatest();
  const early = useEarlyEvents();
  const load = useCallback(async (keepShown = false) => {
    const mine = latest.ask();
    try {
      const page = await fetchPage(null, keepShown ? Math.min(MOST, Math.max(PAGE, onScreen.current)) : PAGE);
      if (!latest.holds(mine)) return;
      setRows((held) => early.take()
        .reduce((list, job) => withEvent(list, job, filters), withNewest(page.jobs, held, filters)));
      setNext(page.next_before); setError(null);
    } catch (err) { if (latest.holds(mine)) setError(describe(err)); }
  }, [fetchPage]);
  useEffect(() => { setRows(null); wanted.current = PAGE; load(); }, [load]);
  useEffect(() => bus.onReconnect(() => load(true)), [load]); // "Carregar mais" rows stay
  // A short refetch after each submit (here, or "Executar Agora" above the tabs): the table is
  // right even when the stream's event is late or the stream is down.
  // It reads with the filters shown when it fires, not those of the click.
  const [acted, setActed] = useState(0);
  const loadNow = useRef(load);
  loadNow.current = load;
  useEffect(() => {
    if (!submitted && !acted) return undefined;
    const t = setTimeout(() => loadNow.current(true), 1500);
    return () => clearTimeout(t);
  }, [submitted, acted]);
  useEffect(() => bus.onJob((job) => {
    if (job.tenant_id !== tenant.id || job.provider_slug !== slug) return;
    setRows((list) => {
      if (list) return withEvent(list, job, filters);
      early.keep(job); // the page that lands may have been read before it
      return list;
    });
  }), [tenant.id, slug, filters]);

  // One action at a time each: a double click on "Carregar mais" asked for the same page
  // twice and counted two pages asked for, so a table left open kept 20 rows more than it
  // showed; on a run's "Cancelar" or on "Cancelar todos os pendentes" it sent two, and the
  // refused second one (409 job_finished, or each job the first had already canceled) was
  // told as an error after the first one's success.
  const actions = useOneAtATime();
  const more = () => actions.run(MORE, moreNow);
  async function moreNow() {
    const mine = latest.now(); // a page of the list as it was when asked, else nothing
    wanted.current += PAGE; // meanwhile new runs on top do not push the last row off
    try {
      const page = await fetchPage(next);
      if (!latest.holds(mine)) return;
      setRows((list) => [...list, ...page.jobs.filter((j) => !list.some((x) => x.id === j.id))]);
      setNext(page.next_before);
    } catch (err) { notify('error', describe(err)); }
  }
  async function retry(job) {
    const started = await runIntegration(tenant.id, slug, job.id);
    if (started && matches(started, filters)) {
      setRows((list) => (list.some((j) => j.id === started.id) ? list : [started, ...list]));
    }
    if (started) setActed((n) => n + 1);
  }
  const cancel = (job) => actions.run(job.id, async () => {
    const done = await cancelJob(job.id);
    // The stream may have brought the job's end first: the answer must not undo it.
    if (done) setRows((list) => list.map((j) => (j.id === done.id ? newestJob(j, done) : j)).filter((j) => matches(j, filters)));
    if (done) setActed((n) => n + 1);
  });
  const cancelAllPending = () => actions.run(ALL_PENDING, cancelEveryPending);
  async function cancelEveryPending() {
    if (!confirm('Cancelar todas as execuções pendentes desta organização?')) return;
    setBusy(true);
    let canceled = 0; let failed = 0; let before = null;
    try {
      do {
        const page = await api('list-integration-jobs', { query: { tenant_id: tenant.id, status: 'pending', limit: 200, before } });
        for (const job of page.jobs) {
          try { await api('cancel-integration-job', { method: 'POST', body: { job_id: job.id } }); canceled += 1; } catch { failed += 1; }
        }
        before = page.next_before;
      } while (before);
      const told = canceled === 1 ? '1 execução pendente cancelada'
        : `${fmtNumber(canceled)} execuções pendentes canceladas`;
      const refused = failed === 1 ? ', 1 não pôde ser cancelada'
        : `, ${fmtNumber(failed)} não puderam ser canceladas`;
      notify(failed ? 'error' : 'info', `${told}${failed ? refused : ''}.`);
    } catch (err) { notify('error', describe(err)); }
    setBusy(false);
    load();
  }
  const setFilter = (key) => (e) => setFilters((f) => ({ ...f, [key]: e.target.value }));
  // The dialog follows its run as the table does (opened on a live run, it said "Em execução"
  // with no end, result or error for good): the row's copy, else the one it was opened on.
  const detail = shown && ((rows || []).find((j) => j.id === shown.id) || shown);

  return html`<form class="row" onSubmit=${(e) => e.preventDefault()} aria-label="Filtros">
      <label for="f-status">Status</label>
      <select id="f-status" value=${filters.status} onChange=${setFilter('status')}>
        <option value="">Todos</option>
        ${Object.entries(JOB_STATUS).map(([k, v]) => html`<option value=${k}>${v.name}</option>`)}
      </select>
      <label for="f-trigger">Gatilho</label>
      <select id="f-trigger" value=${filters.trigger} onChange=${setFilter('trigger')}>
        <option value="">Todos</option>
        ${Object.entries(TRIGGERS).map(([k, v]) => html`<option value=${k}>${v}</option>`)}
      </select>
      ${admin && html`<button type="button" class="danger" disabled=${busy} onClick=${cancelAllPending}>Cancelar todos os pendentes</button>`}
    </form>
    ${error && html`<${Notice} kind="error">${error}</${Notice}>`}
    ${!rows && !error && html`<p role="status">Carregando execuções…</p>`}
    ${rows && html`<div class="table-wrap"><table data-testid="runs">
      <caption class="visually-hidden">Execuções, mais recentes primeiro</caption>
      <thead><tr>
        <th scope="col">Data</th><th scope="col">Status</th><th scope="col">Progresso</th>
        <th scope="col">Tempo de execução</th><th scope="col">Tentativas</th><th scope="col">Gatilho</th><th scope="col">Ações</th>
      </tr></thead>
      <tbody>
        ${rows.length === 0 && html`<tr><td colspan="7" class="muted">Nenhuma execução com esses filtros.</td></tr>`}
        ${rows.map((job) => {
          const s = JOB_STATUS[job.status] || { name: job.status, color: 'gray' };
          return html`<tr key=${job.id} data-job=${job.id} data-status=${job.status}>
            <td>${fmtDateTime(job.created_at)}</td>
            <td><${Badge} color=${s.color}>${s.name}</${Badge}></td>
            <td style="min-width:8rem"><${Progress} value=${job.progress} label="Progresso da execução" /></td>
            <td class="num">${fmtDuration(job.execution_time_ms)}</td>
            <td class="num">${job.attempts} de ${job.max_attempts}</td>
            <td>${TRIGGERS[job.trigger] || job.trigger}${job.scheduled_for ? html`<br /><small class="muted">${fmtDateTime(job.scheduled_for)}</small>` : ''}</td>
            <td><div class="row">
              <button type="button" onClick=${() => setShown(job)}>${job.status === 'error' ? 'Ver erro' : 'Ver detalhes'}</button>
              ${admin && isLive(job) && html`<button type="button" class="danger" disabled=${job.cancel_requested || actions.busy(job.id)} onClick=${() => cancel(job)}>Cancelar</button>`}
              ${admin && (job.status === 'error' || job.status === 'canceled') && html`<button type="button" data-action="retry" onClick=${() => retry(job)}>Tentar novamente</button>`}
            </div></td>
          </tr>`;
        })}
      </tbody>
    </table></div>
    ${next && html`<p><button type="button" disabled=${actions.busy(MORE)} onClick=${more}>Carregar mais</button></p>`}`}
    <${Dialog} title="Detalhes da execução" open=${!!shown} onClose=${() => setShown(null)}>
      ${detail && html`<dl>
        <dt>Id</dt><dd><code>${detail.id}</code></dd>
        <dt>Status</dt><dd>${(JOB_STATUS[detail.status] || {}).name || detail.status}</dd>
        <dt>Criada</dt><dd>${fmtDateTime(detail.created_at)}</dd>
        <dt>Início / fim</dt><dd>${fmtDateTime(detail.started_at)} → ${fmtDateTime(detail.finished_at)}</dd>
        <dt>Tentativas</dt><dd>${detail.attempts} de ${detail.max_attempts}</dd>
      </dl>
      ${detail.error_message && html`<h3>Erro</h3><pre data-testid="job-error">${detail.error_message}</pre>`}
      ${detail.result && html`<h3>Resultado</h3><pre>${JSON.stringify(detail.result, null, 2)}</pre>`}`}
    </${Dialog}>`;
}
