// Connecting a provider or an MCP connector through its OAuth page, and the dialog a 409
// oauth_refresh_required (or a run in attention for the same reason) opens: each provider with
// its reason and a Reconnect button. Before the browser leaves for the OAuth page, where to come
// back to is kept in sessionStorage; the callback sends the browser to "/?provider=..&status=.."
// (or "?connector=<id>&status=.."), and app.js returns there with the outcome as a notice.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, keep } from './api.js';
import { html } from './html.js';
import { ErrorLine } from './ui.js';

// Starts the OAuth flow of a provider ("gmail") or a connector ("connector:<id>"). Resolves to
// null when the browser is leaving for the OAuth page, true when it was connected already, or
// the failed answer.
export async function connect(provider, force) {
  const r = provider.startsWith('connector:')
    ? await api('POST', `/api/connectors/${encodeURIComponent(provider.slice(10))}/oauth/start`, {})
    : await api('POST', `/api/mcp/auth/${encodeURIComponent(provider)}/start`, force ? { force: true } : {});
  if (r.status !== 200) return r;
  if (r.body.redirect_url) {
    keep('returnTo', location.pathname + location.search);
    location.assign(r.body.redirect_url);
    return null;
  }
  return true;
}

// The modal dialog: providers [name], reasons {name: reason}; onClose() when dismissed,
// onConnected() when a provider was connected without leaving the page.
export function ReconnectDialog({ providers, reasons, title, onClose, onConnected }) {
  const ref = useRef(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState('');
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d && d.open && d.close();
  }, []);
  const reconnect = async (p) => {
    setBusy(p);
    setError(null);
    const r = await connect(p, true);
    if (r === true) onConnected && onConnected();
    else if (r) setError(r);
    setBusy('');
  };
  return html`<dialog ref=${ref} class="dialog" aria-labelledby="reconnect-title"
                      onClose=${() => onClose && onClose()}>
    <h2 id="reconnect-title">${title || 'Reconnect to run this workflow'}</h2>
    <p>These connections need to be authorized again:</p>
    <ul class="reconnect-list">
      ${(providers || []).map((p) => html`<li key=${p}>
        <strong>${p}</strong>: <span class="reason">${(reasons || {})[p] || 'not authorized'}</span>
        <button type="button" class="primary" disabled=${busy === p}
                onClick=${() => reconnect(p)}>Reconnect ${p}</button>
      </li>`)}
    </ul>
    <${ErrorLine} error=${error}/>
    <div class="actions"><button type="button" onClick=${() => ref.current.close()}>Close</button></div>
  </dialog>`;
}
