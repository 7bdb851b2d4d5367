// The toolgate web UI: sign-in, then a header (navigation, credits, recent runs) over one page
// chosen from location.pathname (history API; the gateway answers index.html for any such
// path). The OAuth callbacks send the browser to "/?provider=..&status=.." or
// "/?connector=..&status=..": the outcome becomes a notice and the page the user left
// (sessionStorage returnTo) is restored.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, forget, kept, session, signIn, signOut, takeFragmentToken } from './api.js';
import { Credentials } from './credentials.js';
import { html } from './html.js';
import { Integrations } from './integrations.js';
import { Reviews } from './reviews.js';
import { RunList, RunPage } from './runs.js';
import { Tools } from './tools.js';
import { Link, StatusBadge, navigate } from './ui.js';
import { NewWorkflow, WorkflowList, WorkflowPage } from './workflows.js';

const NAV = [
  ['/integrations', 'Integrations'],
  ['/workflows', 'Workflows'],
  ['/runs', 'Runs'],
  ['/reviews', 'Reviews'],
  ['/tools', 'Tools'],
  ['/credentials', 'Credentials'],
];

// The outcome of an OAuth round trip in the query string, as a sentence; the query is then
// dropped and the page the user started from comes back.
function takeOAuthOutcome() {
  const q = new URLSearchParams(location.search);
  const who = q.get('provider') ? 'Provider ' + q.get('provider') : q.get('connector') ? 'Connector ' + q.get('connector') : null;
  if (!who || !q.get('status')) return null;
  const reason = q.get('reason') || q.get('error');
  const ok = q.get('status') === 'connected';
  const text = `${who}: ${q.get('status')}${reason ? ' (' + reason + ')' : ''}.`;
  const back = kept('returnTo');
  forget('returnTo');
  history.replaceState(null, '', back && back.startsWith('/') && back !== '/' ? back : '/integrations');
  return { ok, text };
}

function SignIn({ onDone }) {
  const [mode, setMode] = useState('jwt');
  const [value, setValue] = useState('');
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const s = mode === 'jwt' ? { mode, token: value.trim() } : { mode, user: value.trim() };
    signIn(s);
    const r = await api('GET', '/api/credits');
    if (r.status === 200) onDone();
    else {
      signOut();
      setError(r.body && r.body.message ? r.body.message : 'HTTP ' + r.status);
    }
  };
  return html`<main id="main" class="signin">
    <h1>Sign in to toolgate</h1>
    <form onSubmit=${submit} class="panel">
      <fieldset><legend>How</legend>
        <label><input type="radio" name="mode" value="jwt" checked=${mode === 'jwt'} onChange=${() => setMode('jwt')}/> A token (JWT)</label>
        <label><input type="radio" name="mode" value="user" checked=${mode === 'user'} onChange=${() => setMode('user')}/> A user name (trusted-header mode)</label>
      </fieldset>
      <div class="field"><label for="cred">${mode === 'jwt' ? 'Bearer token' : 'User name'}</label>
        ${mode === 'jwt'
          ? html`<textarea id="cred" rows="4" required class="code" value=${value} onInput=${(e) => setValue(e.target.value)}></textarea>`
          : html`<input id="cred" required value=${value} autocomplete="username" onInput=${(e) => setValue(e.target.value)}/>`}
      </div>
      ${error ? html`<p class="error" role="alert">Not signed in: ${error}</p>` : null}
      <button type="submit" class="primary">Sign in</button>
      <p class="muted small">Kept in this tab only (sessionStorage). An embedding product can hand a
        token over as <code>#token=&lt;jwt&gt;</code> in the URL.</p>
    </form>
  </main>`;
}

function Header({ path, onSignOut }) {
  const [credits, setCredits] = useState(null);
  const [recent, setRecent] = useState([]);
  useEffect(() => {
    api('GET', '/api/credits').then((r) => r.status === 200 && setCredits(r.body.credits));
    api('GET', '/api/runs?limit=5').then((r) => r.status === 200 && setRecent(r.body.runs));
  }, [path]);
  const s = session();
  return html`<header class="top">
    <a class="skip" href="#main">Skip to content</a>
    <div class="brand"><${Link} href="/integrations">toolgate</${Link}></div>
    <nav aria-label="Main"><ul>
      ${NAV.map(([href, label]) => html`<li key=${href}><${Link} href=${href}
        aria-current=${path.startsWith(href) ? 'page' : undefined}>${label}</${Link}></li>`)}
    </ul></nav>
    <div class="who">
      <span id="credits">Credits: <strong>${credits === null ? '…' : credits}</strong></span>
      <span class="muted small">${s && s.mode === 'user' ? s.user : 'token'}</span>
      <button type="button" onClick=${onSignOut}>Sign out</button>
    </div>
    ${recent.length ? html`<details class="recent"><summary>Recent activity</summary><ul>
      ${recent.map((r) => html`<li key=${r.id}><${Link} href=${'/runs/' + r.id}>${r.id}</${Link}> <${StatusBadge} status=${r.status}/></li>`)}
    </ul></details>` : null}
  </header>`;
}

function page(path) {
  let m;
  if ((m = /^\/runs\/([^/]+)$/.exec(path))) return html`<${RunPage} id=${decodeURIComponent(m[1])}/>`;
  if (path === '/runs') return html`<${RunList}/>`;
  if (path === '/workflows/new') return html`<${NewWorkflow}/>`;
  if ((m = /^\/workflows\/([^/]+)$/.exec(path))) return html`<${WorkflowPage} id=${decodeURIComponent(m[1])}/>`;
  if (path === '/workflows') return html`<${WorkflowList}/>`;
  if (path === '/reviews') return html`<${Reviews}/>`;
  if (path === '/tools') return html`<${Tools}/>`;
  if (path === '/credentials') return html`<${Credentials}/>`;
  if (path === '/integrations' || path === '/') return html`<${Integrations}/>`;
  return html`<section><h1>Not found</h1><p>No page at ${path}. <${Link} href="/integrations">Integrations</${Link}></p></section>`;
}

function App({ notice: first }) {
  const [signed, setSigned] = useState(!!session());
  const [loc, setLoc] = useState(location.pathname + location.search);
  const [notice, setNotice] = useState(first);
  useEffect(() => {
    const on = () => {
      setLoc(location.pathname + location.search);
      setNotice(null); // an OAuth outcome belongs to the page it returned to
    };
    const out = () => setSigned(false);
    window.addEventListener('popstate', on);
    window.addEventListener('toolgate:navigate', on);
    window.addEventListener('toolgate:unauthorized', out);
    return () => {
      window.removeEventListener('popstate', on);
      window.removeEventListener('toolgate:navigate', on);
      window.removeEventListener('toolgate:unauthorized', out);
    };
  }, []);
  useEffect(() => {
    const h = document.querySelector('main h1');
    document.title = (h ? h.textContent + ' · ' : '') + 'toolgate';
  });
  if (!signed) return html`<${SignIn} onDone=${() => setSigned(true)}/>`;
  const path = location.pathname;
  return html`<${Header} path=${loc} onSignOut=${() => {
      signOut();
      setSigned(false);
      navigate('/integrations');
    }}/>
    <main id="main" key=${loc}>
      ${notice ? html`<p class=${notice.ok ? 'notice ok' : 'notice error'} role="status" id="oauth-notice">${notice.text}
        <button type="button" class="link" onClick=${() => setNotice(null)}>Dismiss</button></p>` : null}
      ${page(path)}
    </main>`;
}

takeFragmentToken();
const notice = takeOAuthOutcome();
if (location.pathname === '/') history.replaceState(null, '', '/integrations');
render(html`<${App} notice=${notice}/>`, document.getElementById('app'));
