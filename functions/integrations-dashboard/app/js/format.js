// Dates, durations and statuses as people read them (pt-BR).
const dateTime = new Intl.DateTimeFormat('pt-BR', { dateStyle: 'short', timeStyle: 'medium' });
const time = new Intl.DateTimeFormat('pt-BR', { timeStyle: 'medium' });
const day = new Intl.DateTimeFormat('pt-BR', { dateStyle: 'short', timeZone: 'UTC' });

export function fmtDateTime(value) { return value ? dateTime.format(new Date(value)) : '—'; }
export function fmtTime(value) { return value ? time.format(new Date(value)) : '—'; }
export function fmtDay(value) { return value ? day.format(new Date(value + (value.length === 10 ? 'T00:00:00Z' : ''))) : '—'; }

export function fmtDuration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (Math.round(ms) < 1000) return `${Math.round(ms)} ms`;
  // Rounded first, then split: 59,96 s is "1 min 0 s" and 119,6 s "2 min 0 s", never
  // "60,0 s" or "1 min 60 s".
  const tenths = Math.round(ms / 100);
  if (tenths < 600) return `${(tenths / 10).toFixed(1).replace('.', ',')} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

export function fmtAgo(value, now = Date.now()) {
  if (!value) return '—';
  const s = Math.round((now - new Date(value).getTime()) / 1000);
  if (s < 60) return 'agora há pouco';
  if (s < 3600) return `há ${Math.floor(s / 60)} min`;
  if (s < 86400) return `há ${Math.floor(s / 3600)} h`;
  return `há ${fmtCount(Math.floor(s / 86400), 'dia', 'dias')}`;
}

export function fmtNumber(n) { return n === null || n === undefined ? '—' : Number(n).toLocaleString('pt-BR'); }
/** A count and its noun, singular for exactly one ("1 arquivo", "0 arquivos", "1.234 créditos"). */
export function fmtCount(n, one, many) { return `${fmtNumber(n)} ${Number(n) === 1 ? one : many}`; }
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
// Why an export paused (its pause_code), as the page says it; `failures` is how many in a
// row it took. The server's English pause_reason stays for whoever fixes it. A code this
// page does not know reads as a fault.
const PAUSES = {
  admin: () => 'Pausado por um administrador.',
  schema: () => 'Pausado: o schema do Gestão Scouter não corresponde ao mapeamento. Valide o schema, aplique o SQL sugerido, recarregue o cache e retome.',
  key: () => 'Pausado: o Gestão Scouter recusou a chave. Corrija a configuração e retome.',
  refused: () => 'Pausado: o Gestão Scouter recusou um lote. Veja o detalhe técnico e retome.',
  failing: (n) => `Pausado: ${n} lotes seguidos falharam. Retome quando o Gestão Scouter voltar a responder.`,
  stalled: (n) => `Pausado: a exportação parou sem resposta ${n} vezes seguidas (falha, tempo esgotado ou falta de memória). Retome para tentar de novo.`,
};
export function fmtPause(code, failures) {
  const say = PAUSES[code];
  return say ? say(failures) : 'Pausado por uma falha. Veja o detalhe técnico e retome.';
}
export const isAdminPause = (code) => code === 'admin';
export const EXPORT_FAILED = 'A exportação falhou.';
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
