// Agendamento: cron, zone and missed-run policy (integration-schedules), the next five runs.
import { html, useCallback, useEffect, useMemo, useState } from '../../vendor/htm/preact-standalone.module.js';
import { api, describe } from '../api.js';
import { fmtDateTime, fmtLastOccurrence, isLive } from '../format.js';
import { bus } from '../live.js';
import { Notice, coalesced, notify, useOneAtATime } from '../ui.js';

const ZONES = ['America/Sao_Paulo', 'America/Manaus', 'America/Recife', 'America/Fortaleza', 'America/Cuiaba', 'America/Rio_Branco', 'America/Noronha', 'UTC'];
const PRESETS = [['* * * * *', 'A cada minuto'], ['0 * * * *', 'A cada hora'], ['0 2 * * *', 'Diariamente às 02:00'], ['0 8 * * 1-5', 'Dias úteis às 08:00']];
const MISSED = { skip: 'Pular as execuções perdidas', once: 'Executar uma vez por todas as perdidas', all: 'Executar cada uma das perdidas' };

export function Schedule({ tenant, slug }) {
  const admin = tenant.role === 'admin';
  const [current, setCurrent] = useState(undefined);
  const [form, setForm] = useState({ cron: '0 2 * * *', timezone: 'America/Sao_Paulo', missed: 'once', enabled: true });
  const [error, setError] = useState(null);

  // `refresh`: only the panel (the last and next runs); the form may be being edited.
  const load = useCallback(async (refresh = false) => {
    try {
      const listed = await api('integration-schedules', { query: { tenant_id: tenant.id } });
      const found = listed.schedules.find((s) => s.provider_slug === slug) || null;
      setCurrent(found);
      if (!refresh) setError(null);
      if (found && !refresh) setForm({ cron: found.cron, timezone: found.timezone, missed: found.missed, enabled: found.enabled });
    } catch (err) { if (!refresh) setError(describe(err)); }
  }, [tenant.id, slug]);
  useEffect(() => { load(); }, [load]);
  // A run of this integration ended (a scheduled one moves the last and next runs), or the
  // stream reconnected (what changed meanwhile): read the schedule again, once for a burst.
  const refresh = useMemo(() => coalesced(() => load(true)), [load]);
  useEffect(() => bus.onJob((job) => {
    if (job.tenant_id === tenant.id && job.provider_slug === slug && !isLive(job)) refresh();
  }), [tenant.id, slug, refresh]);
  useEffect(() => bus.onReconnect(refresh), [refresh]);

  // One write at a time: a double click on "Remover" sent two, and the refused second one
  // (404) put "Não encontrado." under the form after "Agendamento removido."; one on
  // "Salvar" saved twice and said so twice.
  const writes = useOneAtATime();
  const once = (write) => writes.run('write', write);
  const busy = writes.busy('write');
  function save(e) {
    e.preventDefault();
    return once(async () => {
      try {
        const body = { tenant_id: tenant.id, provider_slug: slug, ...form, cron: form.cron.trim(), timezone: form.timezone.trim() };
        const saved = await api('integration-schedules', { method: 'PUT', body });
        setCurrent(saved); setError(null);
        notify('success', 'Agendamento salvo.');
      } catch (err) { setError(describe(err)); }
    });
  }
  const remove = () => once(async () => {
    if (!confirm('Remover o agendamento desta integração?')) return;
    try {
      await api('integration-schedules', { method: 'DELETE', body: { tenant_id: tenant.id, provider_slug: slug } });
      setCurrent(null); notify('info', 'Agendamento removido.');
    } catch (err) { setError(describe(err)); }
  });
  const set = (key) => (e) => setForm((f) => ({ ...f, [key]: e.target.type === 'checkbox' ? e.target.checked : e.target.value }));

  if (current === undefined && !error) return html`<p role="status">Carregando agendamento…</p>`;
  // Never read: whether there is a schedule is not known, so the page neither says there is
  // none nor offers a form whose defaults would replace the one there may be.
  if (current === undefined) {
    return html`<${Notice} kind="error">${error}</${Notice}>
      <button type="button" onClick=${() => load()}>Tentar de novo</button>`;
  }
  return html`<div class="panel">
      ${current && current.paused_reason && html`<${Notice} kind="warn">${current.paused_reason}</${Notice}>`}
      ${current ? html`<p>Agendada: <code>${current.cron}</code> (${current.timezone}) · ${current.enabled ? 'ativa' : 'pausada'}
          ${current.last_run_at ? html` · última: ${fmtDateTime(current.last_run_at)} (${fmtLastOccurrence(current.last_status)})` : ''}</p>`
        : html`<p class="muted">Esta integração não tem agendamento.</p>`}
      <h3>Próximas execuções</h3>
      ${current && current.next_runs.length
        ? html`<ol data-testid="next-runs">${current.next_runs.map((r) => html`<li key=${r}>${fmtDateTime(r)}</li>`)}</ol>`
        : html`<p class="muted">Nenhuma.</p>`}
    </div>
    <form class="panel" onSubmit=${save}>
      <fieldset disabled=${!admin}>
        <legend>${current ? 'Alterar agendamento' : 'Agendar'}</legend>
        ${!admin && html`<p class="muted">Somente administradores alteram o agendamento.</p>`}
        <div class="field">
          <label for="s-cron">Expressão cron (5 campos)</label>
          <input id="s-cron" value=${form.cron} onInput=${set('cron')} required aria-describedby="s-cron-help" />
          <small id="s-cron-help">minuto hora dia mês dia-da-semana, no fuso escolhido.</small>
          <div class="row">${PRESETS.map(([cron, label]) => html`<button type="button" key=${cron} onClick=${() => setForm((f) => ({ ...f, cron }))}>${label}</button>`)}</div>
        </div>
        <div class="field">
          <label for="s-zone">Fuso horário</label>
          <input id="s-zone" list="zones" value=${form.timezone} onInput=${set('timezone')} required />
          <datalist id="zones">${ZONES.map((z) => html`<option value=${z} />`)}</datalist>
        </div>
        <div class="field">
          <label for="s-missed">Execuções perdidas</label>
          <select id="s-missed" value=${form.missed} onChange=${set('missed')}>
            ${Object.entries(MISSED).map(([k, v]) => html`<option value=${k}>${v}</option>`)}
          </select>
        </div>
        <div class="field row"><input id="s-enabled" type="checkbox" checked=${form.enabled} onChange=${set('enabled')} /><label for="s-enabled">Ativo</label></div>
        ${error && html`<${Notice} kind="error">${error}</${Notice}>`}
        <div class="row"><button type="submit" class="primary" disabled=${busy}>Salvar agendamento</button>
          ${current && html`<button type="button" class="danger" disabled=${busy} onClick=${remove}>Remover</button>`}</div>
      </fieldset>
    </form>`;
}
