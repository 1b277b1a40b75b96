// Detalhe of one integration: Visão Geral, Execuções, Agendamento, Alertas (seed 001 §6).
import { html, useCallback, useEffect, useState } from '../../vendor/htm/preact-standalone.module.js';
import { api, describe } from '../api.js';
import { isLive } from '../format.js';
import { runIntegration } from '../jobs.js';
import { bus } from '../live.js';
import { Notice, TabPanel, Tabs, useEarlyEvents } from '../ui.js';
import { StatusBadge, withJob } from './integracoes.js';
import { Overview } from './overview.js';
import { Runs } from './runs.js';
import { Schedule } from './schedule.js';
import { Alerts } from './alerts.js';

const TABS = [
  { id: 'visao-geral', label: 'Visão Geral' },
  { id: 'execucoes', label: 'Execuções' },
  { id: 'agendamento', label: 'Agendamento' },
  { id: 'alertas', label: 'Alertas' },
];

export function Detalhe({ tenant, slug, tab }) {
  const selected = TABS.some((t) => t.id === tab) ? tab : 'visao-geral';
  const [item, setItem] = useState(null);
  const [error, setError] = useState(null);
  const [submitted, setSubmitted] = useState(0); // runs started here: Execuções reads again
  const early = useEarlyEvents();

  const load = useCallback(async () => {
    try {
      const listed = await api('list-integrations', { query: { tenant_id: tenant.id } });
      const found = listed.integrations.find((i) => i.provider_slug === slug);
      if (!found) { setError('Integração não encontrada nesta organização.'); return; }
      setItem((held) => {
        const base = held?.latest_job ? withJob([found], held.latest_job) : [found];
        return early.take().reduce(withJob, base)[0];
      });
      setError(null);
    } catch (err) { setError(describe(err)); }
  }, [tenant.id, slug]);
  useEffect(() => { setItem(null); load(); }, [load]);
  useEffect(() => bus.onJob((job) => {
    if (job.tenant_id === tenant.id && job.provider_slug === slug) {
      setItem((it) => {
        if (it) return withJob([it], job)[0];
        early.keep(job);
        return it;
      });
    }
  }), [tenant.id, slug]);
  useEffect(() => bus.onReconnect(load), [load]);

  function select(id) { location.hash = `#/t/${tenant.id}/integracoes/${slug}/${id}`; }
  async function run() {
    const started = await runIntegration(tenant.id, slug);
    // The stream may have brought the run's end first: the answer must not undo it.
    if (started) setItem((it) => (it ? withJob([it], started)[0] : it));
    if (started) setSubmitted((n) => n + 1);
    setTimeout(load, 1500);
  }

  if (error) return html`<h1>Integração</h1><${Notice} kind="error">${error}</${Notice}>`;
  if (!item) return html`<p role="status">Carregando…</p>`;
  const live = isLive(item.latest_job);
  const admin = tenant.role === 'admin';
  return html`<nav aria-label="Trilha"><a href="#/t/${tenant.id}/integracoes">← Integrações</a></nav>
    <div class="row spread">
      <h1>${item.display_name} <${StatusBadge} job=${item.latest_job} /></h1>
      <button type="button" class="primary" data-action="run-now" disabled=${live || !item.enabled || !admin || !item.runnable}
        title=${admin ? '' : 'Somente administradores podem executar'} onClick=${run}>Executar Agora</button>
    </div>
    <${Tabs} label="Seções da integração" tabs=${TABS} selected=${selected} onSelect=${select} />
    <${TabPanel} id=${selected}>
      ${selected === 'visao-geral' && html`<${Overview} tenant=${tenant} item=${item} />`}
      ${selected === 'execucoes' && html`<${Runs} tenant=${tenant} slug=${slug} submitted=${submitted} />`}
      ${selected === 'agendamento' && html`<${Schedule} tenant=${tenant} slug=${slug} />`}
      ${selected === 'alertas' && html`<${Alerts} tenant=${tenant} />`}
    </${TabPanel}>`;
}
