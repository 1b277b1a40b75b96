// The API client: the bundle's public functions, called with the user's own JWT.
const TOKEN_KEY = 'syncq.token';
const API_KEY = 'syncq.api';

/** Where the functions live: a saved choice, else beside this app (/functions/v1/). */
export function apiBase() {
  const saved = localStorage.getItem(API_KEY);
  if (saved) return saved.endsWith('/') ? saved : saved + '/';
  const here = new URL(document.baseURI);
  const path = here.pathname.replace(/integrations-dashboard\/$/, '');
  return here.origin + (path.endsWith('/') ? path : path + '/');
}

export function setApiBase(url) {
  if (url) localStorage.setItem(API_KEY, url); else localStorage.removeItem(API_KEY);
}

export function getToken() { return sessionStorage.getItem(TOKEN_KEY); }
export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
}

/** The claims of a JWT (not verified here: the server verifies every call). */
export function claims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part.padEnd(part.length + (4 - part.length % 4) % 4, '=')));
  } catch { return null; }
}

/** A pasted JWT, or the access_token of a pasted Supabase session (JSON). */
export function tokenFromInput(text) {
  const value = (text || '').trim();
  if (!value) return null;
  if (value.startsWith('{')) {
    try {
      const session = JSON.parse(value);
      const token = session.access_token || session.currentSession?.access_token
        || session.session?.access_token;
      return typeof token === 'string' ? token : null;
    } catch { return null; }
  }
  return value.replace(/^Bearer\s+/i, '');
}

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status; this.code = code; this.details = details;
  }
}

const listeners = new Set();
/** Called with every ApiError of status 401 (the session ended). */
export function onUnauthorized(fn) { listeners.add(fn); return () => listeners.delete(fn); }
/** Tell the page the session is over (a 401 met outside api(): the event stream). */
export function sessionEnded(error) { listeners.forEach((fn) => fn(error)); }

/** Call a function: `api('list-integrations', {query: {tenant_id}})`. */
export async function api(name, { method = 'GET', query, body, path = '', auth = true, headers: extra } = {}) {
  const url = new URL(name + path, apiBase());
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
  }
  const headers = { Accept: 'application/json' };
  if (auth && getToken()) headers.Authorization = 'Bearer ' + getToken();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  Object.assign(headers, extra);
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, 'network', 'Sem conexão com o servidor.');
  }
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    const e = (data && data.error) || {};
    const error = new ApiError(response.status, e.code || 'http_' + response.status,
      e.message || response.statusText, e.details);
    if (response.status === 401 && auth) listeners.forEach((fn) => fn(error));
    throw error;
  }
  return data;
}

const MESSAGES = {
  forbidden: 'Permissão negada: só administradores da organização podem fazer isso.',
  job_already_active: 'Já existe uma execução em andamento',
  integration_disabled: 'A integração está desabilitada.',
  job_finished: 'A execução já terminou.',
  not_found: 'Não encontrado.',
  validation_error: 'Dados inválidos.',
  insufficient_credits: 'Créditos insuficientes.',
  too_many_active_jobs: 'Você já tem o máximo de renderizações ativas.',
  runninghub_not_configured: 'O RunningHub não está configurado neste ambiente.',
  unknown_workflow: 'Workflow desconhecido (sem preço).',
  schema_invalid: 'O schema remoto não corresponde ao mapeamento: veja o SQL sugerido.',
  export_already_active: 'Já existe uma exportação em andamento.',
  invalid_transition: 'Essa ação não é possível no estado atual da exportação.',
  network: 'Sem conexão com o servidor.',
  unauthorized: 'Sessão inválida ou expirada: entre novamente.',
  too_many_requests: 'Muitas requisições: tente de novo em instantes.',
  job_not_retryable: 'Só uma execução com falha ou cancelada pode ser repetida.',
  job_canceled: 'A execução foi cancelada.',
  target_missing: 'Nenhum projeto do Gestão Scouter está configurado para esta organização.',
  target_invalid: 'A configuração do projeto do Gestão Scouter é inválida.',
  upstream_error: 'Um serviço externo falhou ou não respondeu: tente de novo em instantes.',
  unavailable: 'Serviço temporariamente indisponível: tente de novo em instantes.',
  database_unavailable: 'O banco de dados está temporariamente indisponível: tente de novo em instantes.',
  internal_error: 'Erro interno no servidor: tente de novo em instantes.',
};

// For a code the page does not name (or an answer that is not the error envelope, such as a
// proxy's HTML page): the server's own message is English, so the status speaks instead.
const BY_STATUS = {
  400: 'Requisição inválida.',
  403: MESSAGES.forbidden,
  404: MESSAGES.not_found,
  409: 'A ação conflita com o estado atual: atualize a página e tente de novo.',
  413: 'Os dados enviados são grandes demais.',
  422: MESSAGES.validation_error,
  429: MESSAGES.too_many_requests,
  500: MESSAGES.internal_error,
  502: 'O servidor não respondeu como esperado: tente de novo em instantes.',
  503: MESSAGES.unavailable,
  504: 'O servidor demorou demais para responder: tente de novo em instantes.',
};

// The fields a 422 names, as the forms label them (the server's message is English).
const FIELDS = {
  cron: 'expressão cron', timezone: 'fuso horário', missed: 'execuções perdidas', enabled: 'ativo',
  emails: 'e-mails', webhook_url: 'webhook', events: 'eventos', remind_at: 'lembretes',
  pause_schedule_after: 'pausar o agendamento após N falhas', start_date: 'data inicial',
  end_date: 'data final', field_mappings: 'mapeamento de campos', table: 'tipo',
  workflowId: 'workflow', inputs: 'prompt',
};

/** A refused field as the page names it: its label, and a key of the user's own in it. */
function fieldName(loc = []) {
  const [field, ...rest] = loc;
  const keys = rest.filter((part) => typeof part === 'string');
  const label = FIELDS[field] || field;
  return keys.length ? `${label} (${keys.join('.')})` : label;
}

/** A message for people, in Portuguese, for an error of any kind. */
export function describe(error) {
  if (error instanceof ApiError) {
    const known = MESSAGES[error.code];
    if (error.code === 'validation_error' && Array.isArray(error.details)) {
      const fields = [...new Set(error.details.map((d) => fieldName(d.loc)).filter(Boolean))];
      return fields.length ? `${known} Confira: ${fields.join(', ')}.` : known;
    }
    return known || BY_STATUS[error.status]
      || (error.status >= 500 ? MESSAGES.internal_error : `A requisição falhou (erro ${error.status}).`);
  }
  return String((error && error.message) || error);
}
