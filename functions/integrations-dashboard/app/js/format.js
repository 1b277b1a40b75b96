// Dates, durations and statuses as people read them (pt-BR).
const dateTime = new Intl.DateTimeFormat('pt-BR', { dateStyle: 'short', timeStyle: 'medium' });
const time = new Intl.DateTimeFormat('pt-BR', { timeStyle: 'medium' });
const day = new Intl.DateTimeFormat('pt-BR', { dateStyle: 'short', timeZone: 'UTC' });

export function fmtDateTime(value) { return value ? dateTime.format(new Date(value)) : '—'; }
export function fmtTime(value) { return value ? time.format(new Date(value)) : '—'; }
export function fmtDay(value) { return value ? day.format(new Date(value + (value.length === 10 ? 'T00:00:00Z' : ''))) : '—'; }

export function fmtDuration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1).replace('.', ',')} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s % 60)} s`;
}

export function fmtAgo(value, now = Date.now()) {
  if (!value) return '—';
  const s = Math.round((now - new Date(value).getTime()) / 1000);
  if (s < 60) return 'agora há pouco';
  if (s < 3600) return `há ${Math.floor(s / 60)} min`;
  if (s < 86400) return `há ${Math.floor(s / 3600)} h`;
  return `há ${Math.floor(s / 86400)} dias`;
}

export function fmtNumber(n) { return n === null || n === undefined ? '—' : Number(n).toLocaleString('pt-BR'); }
export function fmtPercent(rate) {
  if (rate === null || rate === undefined) return '—';
  const pct = rate <= 1 ? rate * 100 : rate;
  return `${pct.toFixed(1).replace('.', ',')}%`;
}

// Integration jobs: the card's badge (seed 001) and the table's status.
export const JOB_STATUS = {
  pending: { label: 'Processando...', color: 'yellow', name: 'Pendente' },
  running: { label: 'Processando...', color: 'yellow', name: 'Em execução' },
  success: { label: 'Concluído', color: 'green', name: 'Concluído' },
  error: { label: 'Falha', color: 'red', name: 'Falha' },
  canceled: { label: 'Cancelado', color: 'gray', name: 'Cancelado' },
};
// A schedule's last occurrence (integration-schedules' last_status): its job's status, or
// what became of an occurrence that made no job.
const OCCURRENCE = { skipped: 'Pulada: uma execução estava em andamento', missed: 'Perdida' };
export function fmtLastOccurrence(status) {
  return JOB_STATUS[status]?.name || OCCURRENCE[status] || status || '—';
}
export const TRIGGERS = { manual: 'Manual', schedule: 'Agendamento', retry: 'Reexecução' };
// integration-metrics' freshness (Airbyte's terms) as the page says it.
export const FRESHNESS = {
  on_time: 'Em dia',
  delayed: 'Atrasados',
  failing: 'Desatualizados',
  never: 'Nunca sincronizados',
};
// Why an export paused (the server's reason, English), as the page says it: the known
// reasons by their form, any other as a fault. The server's words stay for whoever fixes it.
const PAUSE_REASONS = [
  [/^paused by an admin$/, () => 'Pausado por um administrador.'],
  [/schema does not fit/, () => 'Pausado: o schema do Gestão Scouter não corresponde ao mapeamento. Valide o schema, aplique o SQL sugerido, recarregue o cache e retome.'],
  [/refused the key/, () => 'Pausado: o Gestão Scouter recusou a chave. Corrija a configuração e retome.'],
  [/refused the batch/, () => 'Pausado: o Gestão Scouter recusou um lote. Veja o detalhe técnico e retome.'],
  [/^(\d+) batches in a row failed/, (m) => `Pausado: ${m[1]} lotes seguidos falharam. Retome quando o Gestão Scouter voltar a responder.`],
];
export function fmtPauseReason(reason) {
  for (const [form, say] of PAUSE_REASONS) {
    const m = form.exec(reason || '');
    if (m) return say(m);
  }
  return 'Pausado por uma falha. Veja o detalhe técnico e retome.';
}
export const isAdminPause = (reason) => reason === 'paused by an admin';
export const isLive = (job) => !!job && (job.status === 'pending' || job.status === 'running');

export const EXPORT_STATUS = {
  pending: { label: 'Na fila', color: 'yellow' },
  running: { label: 'Exportando', color: 'yellow' },
  paused: { label: 'Pausado', color: 'gray' },
  completed: { label: 'Concluído', color: 'green' },
  failed: { label: 'Falhou', color: 'red' },
};

export const CREDIT_STATUS = {
  pending: { label: 'Pendente', color: 'gray' },
  queued: { label: 'Na fila', color: 'yellow' },
  starting: { label: 'Iniciando', color: 'yellow' },
  running: { label: 'Renderizando', color: 'yellow' },
  completed: { label: 'Concluído', color: 'green' },
  failed: { label: 'Falhou', color: 'red' },
  cancelled: { label: 'Cancelado', color: 'gray' },
};

export const ALERT_EVENTS = {
  failing: 'Primeira falha',
  reminder: 'Lembrete (falhas seguidas)',
  digest: 'Resumo diário',
  recovered: 'Recuperada',
  schedule_paused: 'Agendamento pausado',
  export_paused: 'Exportação pausada',
  export_failed: 'Exportação falhou',
};
