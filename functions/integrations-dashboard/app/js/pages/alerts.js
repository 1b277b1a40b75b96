// Alertas: who hears of failures (integration-alerts) and the recent alerts.
import { html, useCallback, useEffect, useState } from '../../vendor/htm/preact-standalone.module.js';
import { api, describe } from '../api.js';
import { ALERT_EVENTS, EXPORT_FAILED, fmtDateTime, fmtPause } from '../format.js';
import { Notice, TechDetail, notify, useOneAtATime } from '../ui.js';

const DELIVERY = { pending: 'Na fila', running: 'Enviando', sent: 'Enviado', failed: 'Falhou', suppressed: 'Sem destinatário' };

// An export's pause or failure is told by the server in English: said in Portuguese (a
// pause by its code), with its words folded away (a job's error is the provider's message,
// as "Ver erro" shows it).
const EXPORT_DETAIL = {
  export_paused: (alert) => fmtPause(alert.pause_code, alert.failures),
  export_failed: () => EXPORT_FAILED,
};
function detail(alert) {
  const say = EXPORT_DETAIL[alert.event];
  if (!say || !alert.detail) return alert.detail || '';
  return html`${say(alert)}<${TechDetail} text=${alert.detail} />`;
}

export function Alerts({ tenant }) {
  const admin = tenant.role === 'admin';
  const [data, setData] = useState(null);
  const [form, setForm] = useState(null);
  const [error, setError] = useState(null);

  const load = useCallback(async () => {
    try {
      const got = await api('integration-alerts', { query: { tenant_id: tenant.id } });
      setData(got);
      const s = got.settings;
      setForm({ emails: s.emails.join('\n'), webhook_url: s.webhook_url || '', events: s.events,
        remind_at: s.remind_at.join(', '), pause_schedule_after: s.pause_schedule_after });
    } catch (err) { setError(describe(err)); }
  }, [tenant.id]);
  useEffect(() => { load(); }, [load]);

  const writes = useOneAtATime(); // a double click saved twice and said so twice
  function save(e) {
    e.preventDefault();
    return writes.run('save', saveNow);
  }
  async function saveNow() {
    const body = {
      tenant_id: tenant.id,
      emails: form.emails.split(/[\s,;]+/).filter(Boolean),
      webhook_url: form.webhook_url.trim() || null,
      events: form.events,
      remind_at: form.remind_at.split(/[\s,;]+/).filter(Boolean).map(Number),
      pause_schedule_after: Number(form.pause_schedule_after),
    };
    try {
      await api('integration-alerts', { method: 'PUT', body });
      setError(null); notify('success', 'Alertas salvos.'); load();
    } catch (err) { setError(describe(err)); }
  }
  function toggle(event) {
    setForm((f) => ({ ...f, events: f.events.includes(event) ? f.events.filter((x) => x !== event) : [...f.events, event] }));
  }
  const set = (key) => (e) => setForm((f) => ({ ...f, [key]: e.target.value }));

  if (!data) return error ? html`<${Notice} kind="error">${error}</${Notice}>` : html`<p role="status">Carregando alertas…</p>`;
  return html`<form class="panel" onSubmit=${save}>
      <fieldset disabled=${!admin}>
        <legend>Quem é avisado</legend>
        ${!admin && html`<p class="muted">Somente administradores alteram os alertas.</p>`}
        <div class="field"><label for="a-emails">E-mails (um por linha)</label>
          <textarea id="a-emails" value=${form.emails} onInput=${set('emails')}></textarea></div>
        <div class="field"><label for="a-webhook">Webhook (HTTPS)</label>
          <input id="a-webhook" type="url" value=${form.webhook_url} onInput=${set('webhook_url')} placeholder="https://hooks.exemplo/syncq" /></div>
        <fieldset><legend>Eventos</legend>
          ${Object.entries(ALERT_EVENTS).map(([k, v]) => html`<div class="row" key=${k}>
            <input type="checkbox" id="ev-${k}" checked=${form.events.includes(k)} onChange=${() => toggle(k)} />
            <label for="ev-${k}">${v}</label></div>`)}
        </fieldset>
        <div class="field"><label for="a-remind">Lembretes após N falhas seguidas</label>
          <input id="a-remind" value=${form.remind_at} onInput=${set('remind_at')} /></div>
        <div class="field"><label for="a-pause">Pausar o agendamento após N falhas seguidas</label>
          <input id="a-pause" type="number" min="1" max="1000" value=${form.pause_schedule_after} onInput=${set('pause_schedule_after')} /></div>
        ${data.webhook_signing_key && html`<details><summary>Chave de assinatura do webhook</summary>
          <p class="muted">Assinatura em <code>X-Syncq-Signature</code> (HMAC-SHA256).</p><code>${data.webhook_signing_key}</code></details>`}
        ${error && html`<${Notice} kind="error">${error}</${Notice}>`}
        <button type="submit" class="primary" disabled=${writes.busy('save')}>Salvar alertas</button>
      </fieldset>
    </form>
    <h2>Alertas recentes</h2>
    <div class="table-wrap"><table>
      <thead><tr><th scope="col">Data</th><th scope="col">Integração</th><th scope="col">Evento</th><th scope="col">Falhas</th><th scope="col">Envio</th><th scope="col">Detalhe</th></tr></thead>
      <tbody>
        ${data.recent.length === 0 && html`<tr><td colspan="6" class="muted">Nenhum alerta ainda.</td></tr>`}
        ${data.recent.map((a) => html`<tr key=${a.id}>
          <td>${fmtDateTime(a.created_at)}</td><td>${a.provider_slug || '—'}</td><td>${ALERT_EVENTS[a.event] || a.event}</td>
          <td class="num">${a.failures ?? '—'}</td><td>${DELIVERY[a.status] || a.status}${a.delivered.length ? ` (${a.delivered.join(', ')})` : ''}</td>
          <td>${detail(a)}</td></tr>`)}
      </tbody>
    </table></div>`;
}
