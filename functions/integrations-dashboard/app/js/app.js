// syncq dashboard: sign-in, the tenant shell (header, live stream) and the routes.
import { html, render, useEffect, useState } from '../vendor/htm/preact-standalone.module.js';
import { api, claims, describe, getToken, onUnauthorized, setToken } from './api.js';
import { bus, followJobs } from './live.js';
import { Notice, Toasts, notify } from './ui.js';
import { SignIn } from './pages/signin.js';
import { Integracoes } from './pages/integracoes.js';
import { Detalhe } from './pages/detalhe.js';
import { SyncMonitor } from './pages/syncmonitor.js';
import { Creditos } from './pages/creditos.js';

/** `#/t/<tenant>/integracoes/<slug>/<tab>` -> {name, tenantId, slug, tab}. */
export function parseRoute(hash) {
  const parts = (hash || '').replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'entrar') return { name: 'signin' };
  if (parts[0] === 'creditos') return { name: 'creditos' };
  if (parts[0] === 't' && parts[1]) {
    const tenantId = parts[1];
    if (parts[2] === 'sync-monitor') return { name: 'sync-monitor', tenantId, tab: parts[3] };
    if (parts[2] === 'integracoes' && parts[3]) return { name: 'detalhe', tenantId, slug: parts[3], tab: parts[4] };
    return { name: 'integracoes', tenantId };
  }
  return { name: 'home' };
}

function useRoute() {
  const [route, setRoute] = useState(parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

const LIVE_TEXT = { connecting: 'Conectando…', live: 'Ao vivo', reconnecting: 'Reconectando…', off: 'Sem atualizações ao vivo' };

function Header({ session, tenant, route, live, onSignOut }) {
  const tenants = session.tenants;
  const here = (name) => (route.name === name || (name === 'integracoes' && route.name === 'detalhe') ? 'page' : undefined);
  function switchTenant(e) {
    const id = e.target.value;
    const target = route.name === 'sync-monitor' ? 'sync-monitor' : 'integracoes';
    location.hash = `#/t/${id}/${target}`;
  }
  const remembered = tenants.find((t) => t.id === sessionStorage.getItem('syncq.tenant'));
  const tid = tenant ? tenant.id : (remembered || tenants[0])?.id;
  return html`<header class="top">
    <a class="brand" href=${tid ? `#/t/${tid}/integracoes` : '#/creditos'}>syncq</a>
    ${tenants.length > 0 && html`<div class="tenant">
      <label for="tenant-select">Organização</label>
      <select id="tenant-select" value=${tid} onChange=${switchTenant}>
        ${tenants.map((t) => html`<option value=${t.id}>${t.name}</option>`)}
      </select></div>`}
    <nav aria-label="Principal"><ul>
      ${tid && html`<li><a href="#/t/${tid}/integracoes" aria-current=${here('integracoes')}>Integrações</a></li>`}
      ${tid && html`<li><a href="#/t/${tid}/sync-monitor" aria-current=${here('sync-monitor')}>Sync Monitor</a></li>`}
      <li><a href="#/creditos" aria-current=${here('creditos')}>Créditos</a></li>
    </ul></nav>
    <div class="user">
      ${tenant && html`<span class="live ${live === 'live' ? 'on' : live}" role="status" data-testid="live">${LIVE_TEXT[live] || ''}</span>`}
      <span>${session.label}${tenant ? ` · ${tenant.role === 'admin' ? 'admin' : 'membro'}` : ''}</span>
      <button type="button" onClick=${onSignOut}>Sair</button>
    </div>
  </header>`;
}

/** The selected tenant's live stream, shared by the pages through `bus`. */
function useLive(tenantId) {
  const [state, setState] = useState('off');
  useEffect(() => {
    if (!tenantId) { setState('off'); return undefined; }
    return followJobs(tenantId, { onJob: bus.job, onState: setState, onReconnect: bus.reconnected });
  }, [tenantId]);
  return state;
}

function App() {
  const route = useRoute();
  const [session, setSession] = useState(null); // {userId, label, tenants}
  const [problem, setProblem] = useState(null);

  async function startSession(label) {
    const token = getToken();
    if (!token) { setSession(null); return; }
    try {
      const mine = await api('my-tenants');
      const c = claims(token) || {};
      setSession({ userId: mine.user_id, label: label || sessionStorage.getItem('syncq.label') || c.email || mine.user_id.slice(0, 8), tenants: mine.tenants });
      setProblem(null);
    } catch (err) {
      // Only a refused token ends the session: a server or network away for a moment keeps
      // it (the page offers to try again), as every other call's failure does.
      if (err.status === 401 || err.status === 403) setToken(null);
      setSession(null);
      setProblem(describe(err));
    }
  }
  function signOut() { setToken(null); sessionStorage.removeItem('syncq.label'); setSession(null); setProblem(null); location.hash = '#/entrar'; }

  useEffect(() => { startSession(); }, []);
  useEffect(() => onUnauthorized(() => {
    setToken(null); setSession(null);
    notify('error', 'Sua sessão expirou ou o token não é válido: entre novamente.');
  }), []);

  const tenant = session && route.tenantId ? session.tenants.find((t) => t.id === route.tenantId) : null;
  const live = useLive(tenant ? tenant.id : null);
  useEffect(() => { if (tenant) sessionStorage.setItem('syncq.tenant', tenant.id); }, [tenant && tenant.id]);

  useEffect(() => {
    if (session && route.name === 'home') {
      location.replace(session.tenants.length ? `#/t/${session.tenants[0].id}/integracoes` : '#/creditos');
    }
  }, [session, route.name]);

  if (getToken() && !session && problem) {
    return html`<main id="conteudo" class="signin" tabindex="-1"><h1>Entrar no syncq</h1>
      <${Notice} kind="error" testid="session-problem">${problem}</${Notice}>
      <div class="row"><button type="button" class="primary" onClick=${() => startSession()}>Tentar de novo</button>
        <button type="button" onClick=${signOut}>Sair</button></div></main><${Toasts} />`;
  }
  if (!getToken() || !session) {
    return html`<${SignIn} problem=${problem} onSignedIn=${(label) => { sessionStorage.setItem('syncq.label', label || ''); setProblem(null); startSession(label); if (route.name === 'signin') location.hash = '#/'; }} /><${Toasts} />`;
  }

  // Pages are keyed by tenant (Detalhe also by integration): switching remounts them, so an
  // answer still on its way for the one left behind lands in a page that is gone, never under
  // the other's name.
  let page;
  if (route.tenantId && !tenant) {
    page = html`<h1>Sem acesso</h1><${Notice} kind="error" testid="no-access">Organização não encontrada ou você não é membro dela.</${Notice}>`;
  } else if (route.name === 'integracoes') {
    page = html`<${Integracoes} key=${tenant.id} tenant=${tenant} />`;
  } else if (route.name === 'detalhe') {
    page = html`<${Detalhe} key=${tenant.id + '/' + route.slug} tenant=${tenant} slug=${route.slug} tab=${route.tab} />`;
  } else if (route.name === 'sync-monitor') {
    page = html`<${SyncMonitor} key=${tenant.id} tenant=${tenant} />`;
  } else if (route.name === 'creditos') {
    page = html`<${Creditos} />`;
  } else {
    page = html`<p role="status">Carregando…</p>`;
  }
  return html`<${Header} session=${session} tenant=${tenant} route=${route} live=${live} onSignOut=${signOut} />
    <main id="conteudo" tabindex="-1">${page}</main>
    <${Toasts} />`;
}

// The skip link must not change the hash: "#conteudo" is no route (the app would go home).
document.querySelector('a.skip')?.addEventListener('click', (e) => {
  e.preventDefault();
  document.getElementById('conteudo')?.focus();
});

const root = document.getElementById('app');
root.textContent = ''; // the static "Carregando…" placeholder
render(html`<${App} />`, root);
