// Visão Geral: runs, success rate, p50/p95 and 30 days from integration-metrics (when deployed).
import { html, useEffect, useRef, useState } from '../../vendor/htm/preact-standalone.module.js';
import uPlot from '../../vendor/uplot/uPlot.esm.js';
import { JOB_STATUS, fmtDateTime, fmtDay, fmtDuration, fmtNumber, fmtPercent, isLive } from '../format.js';
import { fmtFreshness, loadMetrics } from '../jobs.js';
import { Notice, useLatest } from '../ui.js';

// The x axis says days as people here read them, day first (uPlot's own labels are
// American, month first: "12/4" read as 12 April for 4 December), on whole days only.
const DAY = 86400;
const dayMonth = new Intl.DateTimeFormat('pt-BR',
  { day: '2-digit', month: '2-digit', timeZone: 'UTC' });
const dayTicks = {
  incrs: [1, 2, 3, 7, 14, 28].map((n) => n * DAY),
  values: (u, splits) => splits.map((ts) => dayMonth.format(new Date(ts * 1e3))),
};

function Chart({ series }) {
  const box = useRef(null);
  useEffect(() => {
    const el = box.current;
    if (!el || !series.length) return undefined;
    const x = series.map((d) => Date.parse(d.day + (d.day.length === 10 ? 'T00:00:00Z' : '')) / 1000);
    const data = [x, series.map((d) => d.runs), series.map((d) => d.successes), series.map((d) => d.errors),
      series.map((d) => d.p95_ms)];
    const width = () => Math.max(260, el.clientWidth - 16);
    const plot = new uPlot({
      width: width(), height: 260,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'UTC'), // the series' days are UTC days
      scales: { x: { time: true }, ms: { auto: true } },
      axes: [dayTicks, { label: 'execuções' },
        { scale: 'ms', side: 1, label: 'p95 (ms)', grid: { show: false } }],
      series: [{ label: 'Dia' },
        { label: 'Execuções', stroke: '#1d4ed8', width: 2 },
        { label: 'Sucessos', stroke: '#16a34a', width: 2 },
        { label: 'Falhas', stroke: '#dc2626', width: 2 },
        { label: 'p95 (ms)', stroke: '#9333ea', dash: [6, 4], scale: 'ms' }],
    }, data, el);
    const onResize = () => plot.setSize({ width: width(), height: 260 });
    addEventListener('resize', onResize);
    return () => { removeEventListener('resize', onResize); plot.destroy(); };
  }, [series]);
  return html`<div class="chart" ref=${box} role="img" aria-label="Execuções, sucessos, falhas e tempo p95 por dia nos últimos 30 dias"></div>`;
}

export function Overview({ tenant, item }) {
  const [metrics, setMetrics] = useState(null);
  const job = item.latest_job;
  // Read again whenever the latest run ends (live, or found by a refetch after a reconnection):
  // the counts, times and chart then include it. Only the answer to the latest read counts.
  const ended = job && !isLive(job) ? `${job.id}:${job.status}` : '';
  const latest = useLatest();
  useEffect(() => {
    const mine = latest.ask();
    loadMetrics(tenant.id, item.provider_slug).then((m) => { if (latest.holds(mine)) setMetrics(m); });
  }, [tenant.id, item.provider_slug, ended]);
  const basics = html`<dl class="panel">
    <div><dt class="muted">Situação</dt><dd>${item.enabled ? 'Habilitada' : 'Desabilitada'}</dd></div>
    <div><dt class="muted">Última execução</dt><dd>${fmtDateTime(item.last_run)} (${JOB_STATUS[item.last_status]?.name || item.last_status || '—'})</dd></div>
    ${job && html`<div><dt class="muted">Última duração</dt><dd>${fmtDuration(job.execution_time_ms)}</dd></div>`}
  </dl>`;
  if (!metrics) return html`${basics}<p role="status">Carregando métricas…</p>`;
  if (metrics.unavailable) {
    return html`${basics}<${Notice} kind="info" testid="metrics-unavailable">
      ${metrics.status === 404
        ? 'As métricas ainda não estão disponíveis neste ambiente (a função integration-metrics não foi encontrada). O histórico está na aba Execuções.'
        : `Não foi possível carregar as métricas: ${metrics.message}`}
    </${Notice}>`;
  }
  const p = (metrics.providers || []).find((x) => x.provider_slug === item.provider_slug) || {};
  const series = metrics.series || [];
  return html`${basics}
    <div class="stats" data-testid="metrics">
      <div class="stat"><div class="muted">Execuções (30 dias)</div><div class="value">${fmtNumber(p.runs)}</div></div>
      <div class="stat"><div class="muted">Taxa de sucesso</div><div class="value">${fmtPercent(p.success_rate)}</div></div>
      <div class="stat"><div class="muted">Tempo p50</div><div class="value">${fmtDuration(p.p50_ms)}</div></div>
      <div class="stat"><div class="muted">Tempo p95</div><div class="value">${fmtDuration(p.p95_ms)}</div></div>
      <div class="stat"><div class="muted">Último sucesso</div><div class="value" style="font-size:1rem">${fmtDateTime(p.last_success_at)}</div></div>
      ${p.freshness !== undefined && html`<div class="stat"><div class="muted">Dados</div><div class="value" style="font-size:1rem">${fmtFreshness(p.freshness)}</div></div>`}
    </div>
    <h2>Últimos 30 dias</h2>
    ${series.length ? html`<${Chart} series=${series} />` : html`<p class="muted">Sem execuções no período.</p>`}
    ${series.length > 0 && html`<details><summary>Ver os dados em tabela</summary><div class="table-wrap"><table>
      <thead><tr><th scope="col">Dia</th><th scope="col">Execuções</th><th scope="col">Sucessos</th><th scope="col">Falhas</th><th scope="col">p95</th></tr></thead>
      <tbody>${series.map((d) => html`<tr key=${d.day}><td>${fmtDay(d.day)}</td><td class="num">${d.runs}</td><td class="num">${d.successes}</td><td class="num">${d.errors}</td><td class="num">${fmtDuration(d.p95_ms)}</td></tr>`)}</tbody>
    </table></div></details>`}`;
}
