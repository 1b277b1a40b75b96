// Créditos: the caller's balance and ledger, their render jobs (status, queue position),
// create (priced by the server) and cancel (runninghub-queue-manager).
import { html, useCallback, useEffect, useRef, useState } from '../../vendor/htm/preact-standalone.module.js';
import { api, describe } from '../api.js';
import { CREDIT_STATUS, fmtCount, fmtDateTime, fmtNumber } from '../format.js';
import { Badge, Notice, TechDetail, notify, useLatest, useOneAtATime } from '../ui.js';

const QM = 'runninghub-queue-manager';
const DEMO_WORKFLOW = '1904136902449209346';
const TABLES = { image_jobs: 'Imagem', video_jobs: 'Vídeo' };
const FINAL = new Set(['completed', 'failed', 'cancelled']);
const KIND = { debit: 'Débito', refund: 'Reembolso' };

// crypto.randomUUID needs a secure context (https or localhost); getRandomValues does not.
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

export function Creditos() {
  const [account, setAccount] = useState(null);
  const [jobs, setJobs] = useState(null);
  const [queue, setQueue] = useState(null);
  const [error, setError] = useState(null);
  const [form, setForm] = useState({ table: 'image_jobs', workflowId: DEMO_WORKFLOW, prompt: '' });
  const timer = useRef(null);
  const latest = useLatest(); // only the latest read counts: an older one can arrive after it

  const post = (route, body = {}, headers) => api(QM, { method: 'POST', path: '/' + route, body, headers });
  const load = useCallback(async () => {
    const mine = latest.ask();
    try {
      const [ledger, listed, check] = await Promise.all([post('ledger', { limit: 20 }), post('jobs', { limit: 20 }), post('check')]);
      if (!latest.holds(mine)) return;
      setAccount(ledger); setJobs(listed.jobs); setQueue(check); setError(null);
    } catch (err) { if (latest.holds(mine)) setError(describe(err)); }
  }, []);
  useEffect(() => { load(); }, [load]);
  useEffect(() => { // no event stream for renders: poll while one is unfinished
    clearTimeout(timer.current);
    const active = jobs && jobs.some((j) => !FINAL.has(j.status) && j.status !== 'pending');
    timer.current = setTimeout(load, active ? 1500 : 15000);
    return () => clearTimeout(timer.current);
  }, [jobs, load]);

  // One action at a time each: a second submit in the same turn as the first (a double
  // click) made (and debited) a second render; a double click on a render's button sent two,
  // and the second, refused (409), was told as an error over the first one's success.
  const actions = useOneAtATime();
  async function create(e) {
    e.preventDefault();
    await actions.run('create', createNow);
    load();
  }
  async function createNow() {
    try {
      const inputs = form.prompt ? [{ nodeId: '6', fieldName: 'text', fieldValue: form.prompt }] : [];
      // One key per submission: a create retried after a lost answer (by the browser or a
      // proxy) answers the same render, not a second one (the server remembers it 24 h).
      const job = await post('create', { table: form.table, workflowId: form.workflowId, inputs },
        { 'Idempotency-Key': newKey() });
      notify('info', `Renderização criada (${fmtCount(job.credits_cost, 'crédito', 'créditos')}).`);
      const started = await post('start', { table: job.table, jobId: job.id });
      notify('success', started.position ? `Na fila, posição ${fmtNumber(started.position)}.` : 'Renderização iniciada.');
    } catch (err) { notify('error', describe(err)); }
  }
  // A render's buttons wait for the list read after its action (until then they would act
  // on the render as it was).
  const act = (job, route, done) => actions.run(job.id, async () => {
    try {
      await post(route, { table: job.table, jobId: job.id });
      if (done) notify('info', done);
    } catch (err) { notify('error', describe(err)); }
    await load();
  });
  const start = (job) => act(job, 'start');
  const cancel = (job) => act(job, 'cancel',
    'Renderização cancelada; os créditos voltam ao saldo.');
  const set = (key) => (e) => setForm((f) => ({ ...f, [key]: e.target.value }));

  return html`<h1>Créditos</h1>
    ${error && html`<${Notice} kind="error">${error}</${Notice}>`}
    <div class="stats">
      <div class="stat"><div class="muted">Saldo</div><div class="value" data-testid="balance">${account ? fmtNumber(account.balance) : '…'}</div></div>
      ${queue && html`<div class="stat"><div class="muted">Vagas no RunningHub</div><div class="value">${fmtNumber(queue.free_slots)} de ${fmtNumber(queue.limit)}</div></div>
        <div class="stat"><div class="muted">Na fila (todos)</div><div class="value">${fmtNumber(queue.queued)}</div></div>`}
    </div>
    <form class="panel" onSubmit=${create}>
      <fieldset><legend>Nova renderização</legend>
        <div class="field"><label for="c-table">Tipo</label>
          <select id="c-table" value=${form.table} onChange=${set('table')}>${Object.entries(TABLES).map(([k, v]) => html`<option value=${k}>${v}</option>`)}</select>
          <small>O preço é definido pelo servidor e debitado ao iniciar.</small></div>
        <div class="field"><label for="c-workflow">Workflow</label><input id="c-workflow" value=${form.workflowId} onInput=${set('workflowId')} required pattern="[A-Za-z0-9_\\-]{1,64}" /></div>
        <div class="field"><label for="c-prompt">Prompt</label><input id="c-prompt" value=${form.prompt} onInput=${set('prompt')} maxlength="500" /></div>
        <button type="submit" class="primary" disabled=${actions.busy('create')}>Criar e iniciar</button>
      </fieldset>
    </form>
    <h2>Minhas renderizações</h2>
    <div class="table-wrap"><table data-testid="renders">
      <thead><tr><th scope="col">Criada</th><th scope="col">Tipo</th><th scope="col">Status</th><th scope="col">Posição na fila</th><th scope="col">Custo</th><th scope="col">Créditos</th><th scope="col">Ações</th></tr></thead>
      <tbody>
        ${jobs && jobs.length === 0 && html`<tr><td colspan="7" class="muted">Nenhuma renderização ainda.</td></tr>`}
        ${(jobs || []).map((j) => {
          const s = CREDIT_STATUS[j.status] || { label: j.status, color: 'gray' };
          return html`<tr key=${j.id} data-job=${j.id} data-status=${j.status}>
            <td>${fmtDateTime(j.created_at)}</td><td>${TABLES[j.table] || j.table}</td>
            <td><${Badge} color=${s.color}>${s.label}</${Badge}>${j.error_message && j.status === 'failed'
              // RunningHub's (or the sweep's) English words, folded away as the exports' are
              ? html`<${TechDetail} text=${j.error_message} />` : ''}</td>
            <td class="num">${fmtNumber(j.position)}</td><td class="num">${fmtNumber(j.credits_cost)}</td>
            <td>${j.refunded ? 'reembolsado' : j.debited ? 'debitado' : '—'}</td>
            <td><div class="row">
              ${j.status === 'pending' && html`<button type="button" disabled=${actions.busy(j.id)} onClick=${() => start(j)}>Iniciar</button>`}
              ${!FINAL.has(j.status) && html`<button type="button" class="danger" disabled=${actions.busy(j.id)} onClick=${() => cancel(j)}>Cancelar</button>`}
              ${j.outputs && j.outputs.length > 0 && html`<span class="muted">${fmtCount(j.outputs.length, 'arquivo', 'arquivos')}</span>`}
            </div></td></tr>`;
        })}
      </tbody>
    </table></div>
    <h2>Extrato</h2>
    <div class="table-wrap"><table data-testid="ledger">
      <thead><tr><th scope="col">Data</th><th scope="col">Movimento</th><th scope="col">Créditos</th><th scope="col">Renderização</th></tr></thead>
      <tbody>
        ${account && account.entries.length === 0 && html`<tr><td colspan="4" class="muted">Nenhum movimento.</td></tr>`}
        ${(account ? account.entries : []).map((m) => html`<tr key=${m.kind + m.jobId} data-kind=${m.kind}>
          <td>${fmtDateTime(m.created_at)}</td><td>${KIND[m.kind] || m.kind}</td>
          <td class="num">${m.kind === 'debit' ? '−' : '+'}${fmtNumber(m.amount)}</td><td><code>${m.jobId.slice(0, 8)}</code> (${TABLES[m.table] || m.table})</td></tr>`)}
      </tbody>
    </table></div>`;
}
