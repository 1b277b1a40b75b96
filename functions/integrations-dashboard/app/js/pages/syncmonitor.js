// Sync Monitor → Gestão Scouter (seed 004's GestaoScouterExportTab): the export with its
// progress and errors, the earlier exports, schema and connection checks, and the
// field-mapping editor.
import { html, useCallback, useEffect, useRef, useState } from '../../vendor/htm/preact-standalone.module.js';
import { api, describe } from '../api.js';
import { EXPORT_FAILED, EXPORT_STATUS, fmtDateTime, fmtDay, fmtNumber, fmtPause, isAdminPause } from '../format.js';
import { Badge, Notice, Progress, TabPanel, Tabs, TechDetail, notify, useLatest, useOneAtATime } from '../ui.js';

const CHECKS = {
  url_well_formed: 'URL do projeto válida',
  host_reachable: 'Servidor acessível',
  key_accepted: 'Chave aceita',
  service_role: 'Chave com permissão de escrita (service role)',
  leads_readable: 'Tabela leads legível',
  leads_writable: 'Tabela leads gravável',
};
// A check that passed, as the page says it (the server's detail is English: a failed check
// keeps it, folded away, for whoever fixes the project).
const PASSED = {
  url_well_formed: 'O endereço do projeto está bem formado.',
  host_reachable: 'O Gestão Scouter respondeu.',
  key_accepted: 'A chave foi aceita.',
  service_role: 'A chave pode gravar leads.',
  leads_readable: 'A tabela public.leads pode ser lida.',
  leads_writable: 'Uma linha de teste foi gravada e apagada.',
};
const LIVE = new Set(['pending', 'running']);

function exportStatus(status) {
  return EXPORT_STATUS[status] || { label: status, color: 'gray' };
}

function period(job) {
  return `${job.start_date ? fmtDay(job.start_date) : 'início'} a ${job.end_date ? fmtDay(job.end_date) : 'hoje'}`;
}

/** Leads per second of the time the export was going: its rests (paused, or failed until
 * resumed) do not count, nor does the one it is in. */
export function rate(job, now = Date.now()) {
  if (!job.started_at || !job.exported_leads) return null;
  const end = LIVE.has(job.status) ? now : Date.parse(job.finished_at || job.paused_at || job.updated_at);
  const seconds = (end - Date.parse(job.started_at)) / 1000 - (job.paused_s || 0);
  return seconds > 0 ? job.exported_leads / seconds : null;
}

/**
 * Of two copies of the tenant's export, the one to show: the later export, else the copy
 * changed last (a status read before a click can arrive after the click's own answer; the
 * older copy would also stop the following of a live export). "No export" never replaces one.
 */
export function newestExport(held, arrived) {
  if (!held || !arrived) return arrived || held || null;
  if (held.id !== arrived.id) return Date.parse(arrived.created_at) >= Date.parse(held.created_at) ? arrived : held;
  return Date.parse(arrived.updated_at) >= Date.parse(held.updated_at) ? arrived : held;
}

function ExportPanel({ tenant, onSchema }) {
  const [job, setJob] = useState(undefined);
  const [range, setRange] = useState({ start_date: '', end_date: '' });
  const [error, setError] = useState(null);
  // One action at a time: a double click sent two (the second refused with a 409 that said
  // an export was already running, or that the action was not possible, over the first
  // one's success).
  const actions = useOneAtATime();
  const busy = actions.busy('export');
  const timer = useRef(null);

  const act = useCallback(async (action, extra = {}) => {
    const body = { tenant_id: tenant.id, action, ...extra };
    return api('export-to-gestao-scouter-batch', { method: 'POST', body });
  }, [tenant.id]);
  const refresh = useCallback(async () => {
    try {
      const got = await act('status');
      setJob((held) => newestExport(held, got)); setError(null);
    } catch (err) {
      if (err.status === 404) setJob((held) => newestExport(held, null)); else setError(describe(err));
    }
  }, [act]);
  useEffect(() => { refresh(); }, [refresh]);
  useEffect(() => { // follow a live export (exports have no event stream: poll while live)
    clearTimeout(timer.current);
    if (job && (LIVE.has(job.status) || job.pause_requested || job.reset_requested)) timer.current = setTimeout(refresh, 1000);
    return () => clearTimeout(timer.current);
  }, [job, refresh]);

  const run = (action, extra, done) => actions.run('export', () => runNow(action, extra, done));
  async function runNow(action, extra, done) {
    try {
      const answer = await act(action, extra);
      setJob((old) => newestExport(old, { ...answer, recent_errors: answer.recent_errors || old?.recent_errors || [] }));
      setError(null);
      if (done) notify('info', done);
      setTimeout(refresh, 500);
    } catch (err) {
      if (err.code === 'schema_invalid') onSchema(err.details);
      setError(describe(err));
    }
  }
  function start(e) {
    e.preventDefault();
    run('start', { start_date: range.start_date || null, end_date: range.end_date || null }, 'Exportação iniciada.');
  }
  const live = job && LIVE.has(job.status);
  // A paused export still holds the tenant's one export (the server refuses a new one, 409):
  // it is resumed or reset, not started over.
  const held = live || (job && job.status === 'paused');
  const s = job && exportStatus(job.status);
  const r = job && rate(job);
  return html`<section class="panel" aria-labelledby="export-title">
    <h2 id="export-title">Exportação de leads</h2>
    <form class="row" onSubmit=${start}>
      <label for="x-start">Data inicial</label><input id="x-start" type="date" value=${range.start_date} onInput=${(e) => setRange({ ...range, start_date: e.target.value })} />
      <label for="x-end">Data final</label><input id="x-end" type="date" value=${range.end_date} onInput=${(e) => setRange({ ...range, end_date: e.target.value })} />
      <button type="submit" class="primary" disabled=${held || busy} aria-describedby=${held && !live ? 'x-held' : undefined}>Iniciar exportação</button>
    </form>
    ${held && !live && html`<p class="muted" id="x-held" data-testid="start-blocked">Há uma exportação pausada: só uma exportação por vez. Retome ou resete a exportação abaixo.</p>`}
    ${error && html`<${Notice} kind="error">${error}</${Notice}>`}
    ${job === undefined && html`<p role="status">Carregando…</p>`}
    ${job === null && html`<p class="muted">Nenhuma exportação ainda.</p>`}
    ${job && html`<div data-testid="export-job">
      <h3>Exportação de ${fmtDateTime(job.created_at)} <${Badge} color=${s.color} testid="export-status">${s.label}</${Badge}></h3>
      <${Progress} value=${job.progress} label="Progresso da exportação" />
      <dl class="stats">
        <div class="stat"><dt class="muted">Exportados</dt><dd class="value" data-testid="exported">${fmtNumber(job.exported_leads)} / ${fmtNumber(job.total_leads)}</dd></div>
        <div class="stat"><dt class="muted">Com erro</dt><dd class="value" data-testid="errors">${fmtNumber(job.error_leads)}</dd></div>
        <div class="stat"><dt class="muted">Data em processamento</dt><dd class="value" style="font-size:1rem">${fmtDay(job.processing_date)}</dd></div>
        <div class="stat"><dt class="muted">Taxa</dt><dd class="value" style="font-size:1rem">${r ? `${fmtNumber(Math.round(r))} leads/s` : '—'}</dd></div>
      </dl>
      <p class="muted">Período: ${period(job)}
        ${' · '}lotes: ${fmtNumber(job.batches)}${job.pause_requested ? ' · pausa solicitada' : ''}${job.reset_requested ? ' · reinício solicitado' : ''}</p>
      ${job.pause_reason && html`<${Notice} kind="warn" testid="pause-reason">${fmtPause(job.pause_code, job.consecutive_failures)}
        ${!isAdminPause(job.pause_code) && html`<${TechDetail} text=${job.pause_reason} />`}</${Notice}>`}
      ${job.error_message && html`<${Notice} kind=${job.status === 'failed' ? 'error' : 'warn'} testid="export-error">${job.status === 'failed'
        ? EXPORT_FAILED : 'Um lote falhou; a exportação tentará de novo sozinha.'}
        <${TechDetail} text=${job.error_message} /></${Notice}>`}
      <div class="row">
        <button type="button" disabled=${busy || !live || job.pause_requested} onClick=${() => run('pause', { job_id: job.id }, 'Pausa solicitada.')}>Pausar</button>
        <button type="button" disabled=${busy || !(job.status === 'paused' || job.status === 'failed')} onClick=${() => run('resume', { job_id: job.id }, 'Exportação retomada.')}>Retomar</button>
        <button type="button" class="danger" disabled=${busy} onClick=${() => confirm('Recomeçar a exportação do início? Contadores e erros serão apagados.') && run('reset', { job_id: job.id }, 'Exportação reiniciada.')}>Resetar</button>
      </div>
      <h3>Erros recentes</h3>
      <div class="table-wrap"><table data-testid="export-errors">
        <thead><tr><th scope="col">Lead</th><th scope="col">Mensagem</th><th scope="col">Status HTTP</th><th scope="col">Data</th></tr></thead>
        <tbody>
          ${(job.recent_errors || []).length === 0 && html`<tr><td colspan="4" class="muted">Nenhum erro.</td></tr>`}
          ${(job.recent_errors || []).map((e, i) => html`<tr key=${i}><td>${e.lead_id}</td><td>${e.error_message}</td><td class="num">${e.response_status ?? '—'}</td><td>${fmtDateTime(e.created_at)}</td></tr>`)}
        </tbody>
      </table></div>
    </div>`}
    ${job !== undefined && html`<${ExportHistory} tenant=${tenant} current=${job} />`}
  </section>`;
}

/** The tenant's exports, the current one included (newest first); re-read when it changes state. */
function ExportHistory({ tenant, current }) {
  const [jobs, setJobs] = useState(null);
  const [error, setError] = useState(null);
  const key = current ? `${current.id}:${current.status}` : '';
  const latest = useLatest(); // an answer read before the export's last change can land after
  useEffect(() => {
    const mine = latest.ask();
    api('export-to-gestao-scouter-batch', { query: { tenant_id: tenant.id, limit: 10 } })
      .then((page) => { if (latest.holds(mine)) { setJobs(page.jobs); setError(null); } })
      .catch((err) => { if (latest.holds(mine)) setError(describe(err)); });
  }, [tenant.id, key]);
  if (error) return html`<${Notice} kind="error">${error}</${Notice}>`;
  if (!jobs || jobs.length === 0) return null;
  // The export the panel shows, as the panel shows it (it follows it; the list is older).
  const rows = jobs.map((j) => (current && j.id === current.id ? newestExport(j, current) : j));
  return html`<h3>Histórico de exportações</h3>
    <div class="table-wrap"><table data-testid="export-history">
      <caption class="visually-hidden">Exportações, mais recentes primeiro</caption>
      <thead><tr><th scope="col">Criada em</th><th scope="col">Período</th><th scope="col">Status</th>
        <th scope="col">Exportados</th><th scope="col">Com erro</th><th scope="col">Terminada em</th></tr></thead>
      <tbody>
        ${rows.map((j) => {
          const s = exportStatus(j.status);
          return html`<tr key=${j.id} data-export=${j.id}>
            <td>${fmtDateTime(j.created_at)}</td>
            <td>${period(j)}</td>
            <td><${Badge} color=${s.color}>${s.label}</${Badge}></td>
            <td class="num">${fmtNumber(j.exported_leads)} / ${fmtNumber(j.total_leads)}</td>
            <td class="num">${fmtNumber(j.error_leads)}</td>
            <td>${j.finished_at ? fmtDateTime(j.finished_at) : '—'}</td>
          </tr>`;
        })}
      </tbody>
    </table></div>`;
}

function SchemaPanel({ tenant, report, setReport }) {
  const [busy, setBusy] = useState(false);
  const [checks, setChecks] = useState(null);
  async function call(name, body, then) {
    setBusy(true);
    try { then(await api(name, { method: 'POST', body: { tenant_id: tenant.id, ...body } })); } catch (err) {
      if (err.code === 'schema_invalid') setReport(err.details);
      notify('error', describe(err));
    }
    setBusy(false);
  }
  async function copy() {
    try { await navigator.clipboard.writeText(report.suggested_sql); notify('success', 'SQL copiado.'); } catch {
      const el = document.getElementById('suggested-sql');
      getSelection().selectAllChildren(el);
      notify('info', 'Selecione e copie o SQL (Ctrl+C).');
    }
  }
  return html`<section class="panel" aria-labelledby="schema-title">
    <h2 id="schema-title">Schema e conexão</h2>
    <div class="row">
      <button type="button" disabled=${busy} onClick=${() => call('validate-gestao-scouter-schema', {}, setReport)}>Validar Schema</button>
      <button type="button" disabled=${busy} onClick=${() => call('reload-gestao-scouter-schema-cache', {}, (r) => { setReport(r.validation); notify('success', 'Cache do schema recarregado.'); })}>Recarregar Cache</button>
      <button type="button" disabled=${busy} onClick=${() => call('validate-gestao-scouter-config', {}, setChecks)}>Testar Conexão</button>
    </div>
    ${report && html`<div data-testid="schema-report">
      ${report.valid ? html`<${Notice} kind="success">Schema válido: o Gestão Scouter tem todas as colunas mapeadas.</${Notice}>`
        : html`<${Notice} kind="warn">Schema inválido.</${Notice}>`}
      ${report.missing_columns?.length > 0 && html`<p>Colunas faltando: ${report.missing_columns.map((c) => html`<code key=${c}>${c}</code> `)}</p>`}
      ${report.type_mismatches?.length > 0 && html`<p>Tipos divergentes:</p><ul>${report.type_mismatches.map((m, i) => html`<li key=${i}><code>${Object.values(m).join(' · ')}</code></li>`)}</ul>`}
      ${report.suggested_sql && html`<h3>SQL sugerido</h3>
        <p class="muted">Execute no SQL Editor do Gestão Scouter, depois clique em "Recarregar Cache" e valide de novo.</p>
        <pre class="sql" id="suggested-sql" data-testid="suggested-sql">${report.suggested_sql}</pre>
        <button type="button" onClick=${copy}>Copiar SQL</button>`}
    </div>`}
    ${checks && html`<h3>Teste de conexão ${checks.ok ? '✓' : '✗'}</h3>
      <ul class="checks" data-testid="checks">${checks.checks.map((c) => html`<li key=${c.name} data-check=${c.name} data-ok=${String(c.ok)}>
        <strong>${c.ok ? '✓' : '✗'} ${CHECKS[c.name] || c.name}</strong><br />
        ${c.ok ? html`<span class="muted">${PASSED[c.name] || ''}</span>`
          : html`<span class="muted">Falhou ou não pôde ser verificado.</span>
            <details><summary>Detalhe técnico</summary><span class="muted">${c.detail}</span></details>`}</li>`)}</ul>`}
  </section>`;
}

function MappingPanel({ tenant, onReport }) {
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  const fileInput = useRef(null);
  useEffect(() => {
    api('validate-gestao-scouter-schema', { method: 'POST', body: { tenant_id: tenant.id } })
      .then((r) => { setRows(Object.entries(r.field_mappings || {})); onReport(r); })
      .catch((err) => setError(describe(err)));
  }, [tenant.id]);
  const mapping = () => Object.fromEntries((rows || []).map(([l, r]) => [l.trim(), r.trim()]).filter(([l, r]) => l && r));

  async function validate(save) {
    try {
      const r = await api('validate-gestao-scouter-schema', { method: 'POST', body: { tenant_id: tenant.id, field_mappings: mapping(), save } });
      onReport(r); setError(null);
      notify(r.valid ? 'success' : 'info', save ? 'Mapeamento salvo.' : r.valid ? 'Mapeamento válido.' : 'O mapeamento não corresponde ao schema remoto.');
    } catch (err) {
      if (err.details && err.code === 'schema_invalid') onReport(err.details);
      setError(describe(err));
    }
  }
  function download() {
    const blob = new Blob([JSON.stringify({ fieldMappings: mapping() }, null, 2) + '\n'], { type: 'application/json' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `mapeamento-gestao-scouter-${tenant.slug}.json`;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }
  async function upload(e) {
    const file = e.target.files[0];
    e.target.value = '';
    if (!file) return;
    try {
      const parsed = JSON.parse(await file.text());
      const found = parsed.fieldMappings || parsed.field_mappings || parsed;
      const entries = Object.entries(found);
      if (!entries.length || entries.some(([k, v]) => typeof v !== 'string' || !k)) throw new Error('formato');
      setRows(entries); setError(null);
      notify('info', `Mapeamento importado (${entries.length} campos): valide e salve para usá-lo.`);
    } catch {
      setError('Arquivo inválido: esperado um JSON como {"fieldMappings": {"campo_local": "coluna_remota"}}.');
    }
  }
  const setRow = (i, j) => (e) => setRows((list) => list.map((row, k) => (k === i ? (j === 0 ? [e.target.value, row[1]] : [row[0], e.target.value]) : row)));

  return html`<section class="panel" aria-labelledby="map-title">
    <h2 id="map-title">Mapeamento de campos</h2>
    <p class="muted">Campo local (TabuladorMax) → coluna remota (Gestão Scouter).</p>
    ${error && html`<${Notice} kind="error">${error}</${Notice}>`}
    ${!rows && !error && html`<p role="status">Carregando mapeamento…</p>`}
    ${rows && html`<div data-testid="mapping">
      <div class="table-wrap"><table>
        <thead><tr><th scope="col">Campo local</th><th scope="col">Coluna remota</th><th scope="col"><span class="visually-hidden">Ações</span></th></tr></thead>
        <tbody>${rows.map(([local, remote], i) => html`<tr key=${i}>
          <td><input aria-label="Campo local ${i + 1}" value=${local} onInput=${setRow(i, 0)} size="16" /></td>
          <td><input aria-label="Coluna remota de ${local || i + 1}" value=${remote} onInput=${setRow(i, 1)} size="16" /></td>
          <td><button type="button" aria-label="Remover ${local || 'linha ' + (i + 1)}" onClick=${() => setRows((list) => list.filter((_, k) => k !== i))}>Remover</button></td>
        </tr>`)}</tbody>
      </table></div>
      <div class="row">
        <button type="button" onClick=${() => setRows((list) => [...list, ['', '']])}>Adicionar campo</button>
        <button type="button" onClick=${() => validate(false)}>Validar</button>
        <button type="button" class="primary" onClick=${() => validate(true)}>Salvar</button>
        <button type="button" onClick=${download}>Exportar JSON</button>
        <button type="button" onClick=${() => fileInput.current.click()}>Importar JSON</button>
        <input ref=${fileInput} type="file" accept="application/json,.json" class="visually-hidden" tabindex="-1" aria-label="Arquivo de mapeamento (JSON)" data-testid="mapping-file" onChange=${upload} />
      </div>
    </div>`}
  </section>`;
}

export function SyncMonitor({ tenant }) {
  const [report, setReport] = useState(null);
  const admin = tenant.role === 'admin';
  return html`<h1>Sync Monitor</h1>
    <${Tabs} label="Monitores" tabs=${[{ id: 'gestao-scouter', label: 'Gestão Scouter' }]} selected="gestao-scouter" onSelect=${() => {}} />
    <${TabPanel} id="gestao-scouter">
      ${admin ? html`<${ExportPanel} tenant=${tenant} onSchema=${setReport} />
        <${SchemaPanel} tenant=${tenant} report=${report} setReport=${setReport} />
        <${MappingPanel} tenant=${tenant} onReport=${setReport} />`
        : html`<${Notice} kind="info" testid="admins-only">Somente administradores da organização gerenciam a exportação para o Gestão Scouter.</${Notice}>`}
    </${TabPanel}>`;
}
