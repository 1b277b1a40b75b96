// Sign-in: a picker of the demo users (local stack only) or a pasted JWT / Supabase session.
import { html, useEffect, useState } from '../../vendor/htm/preact-standalone.module.js';
import { api, apiBase, setApiBase, setToken, tokenFromInput } from '../api.js';
import { Notice } from '../ui.js';

const ROLE = { admin: 'Administrador', member: 'Membro' };

export function SignIn({ problem, onSignedIn }) {
  const [demo, setDemo] = useState(null); // null: loading; []: none here
  const [text, setText] = useState('');
  const [error, setError] = useState(null);
  const [base, setBase] = useState(apiBase());

  useEffect(() => {
    api('_local/demo-tokens', { auth: false })
      .then((r) => setDemo(r.users || []))
      .catch(() => setDemo([]));
  }, [base]);

  function useToken(token, label) {
    setToken(token);
    onSignedIn(label);
  }
  function submit(e) {
    e.preventDefault();
    const token = tokenFromInput(text);
    if (!token || token.split('.').length !== 3) {
      setError('Cole um JWT (três partes separadas por ponto) ou o JSON de uma sessão do Supabase com access_token.');
      return;
    }
    setError(null);
    useToken(token, null);
  }
  function saveBase(e) {
    e.preventDefault();
    setApiBase(e.target.elements.base.value.trim());
    setBase(apiBase());
  }

  return html`<main id="conteudo" class="signin" tabindex="-1">
    <h1>Entrar no syncq</h1>
    ${problem && html`<${Notice} kind="error" testid="signin-problem">${problem}</${Notice}>`}
    ${demo && demo.length > 0 && html`<section class="panel" aria-labelledby="demo-title">
      <h2 id="demo-title">Usuários de demonstração</h2>
      <p class="muted">Só no ambiente local: a pilha local emite um token novo para cada um.</p>
      <div class="users">
        ${demo.map((u) => html`<button type="button" key=${u.name} data-user=${u.name}
            onClick=${() => useToken(u.token, u.name)}>
          <strong>${u.name}</strong>
          <span class="muted">${ROLE[u.role] || u.role} · ${u.tenant.name}</span>
        </button>`)}
      </div>
    </section>`}
    <section class="panel" aria-labelledby="token-title">
      <h2 id="token-title">Entrar com um token</h2>
      <form onSubmit=${submit}>
        <div class="field">
          <label for="token-input">Token de acesso (JWT) ou sessão do Supabase (JSON)</label>
          <textarea id="token-input" value=${text} onInput=${(e) => setText(e.target.value)}
            aria-describedby="token-help" autocomplete="off" spellcheck="false"></textarea>
          <small id="token-help">O token fica só nesta aba (sessionStorage) e é enviado apenas às funções do syncq.</small>
        </div>
        ${error && html`<${Notice} kind="error">${error}</${Notice}>`}
        <button type="submit" class="primary">Entrar</button>
      </form>
    </section>
    <details class="panel">
      <summary>Endereço das funções</summary>
      <form onSubmit=${saveBase} class="row">
        <label for="api-base">URL base</label>
        <input id="api-base" name="base" type="url" value=${base} size="40" />
        <button type="submit">Salvar</button>
      </form>
    </details>
  </main>`;
}
