// Integrations: the configured providers with the caller's live status (connect, reconnect,
// disconnect) and the caller's MCP and API connectors (OAuth connect for MCP connectors).
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { html } from './html.js';
import { connect } from './reconnect.js';
import { ErrorLine, Loading, StatusBadge, useLoad, when } from './ui.js';

function ProviderRow({ p, live, onChanged, setError }) {
  const [busy, setBusy] = useState(false);
  const act = async (fn) => {
    setBusy(true);
    setError(null);
    const r = await fn();
    if (r && r !== true) setError(r);
    setBusy(false);
    onChanged();
  };
  const status = (live && live.status) || p.status;
  const reason = live && live.authorized === false ? live.reason : null;
  return html`<tr>
    <th scope="row">${p.display_name || p.provider}<div class="muted small">${p.provider}</div></th>
    <td><${StatusBadge} status=${p.connected ? 'connected' : status || 'not_connected'}/>
      ${status && !p.connected ? html` <span class="muted">${status}</span>` : null}
      ${reason ? html`<div class="small reason">${reason}</div>` : null}
      ${live && live.checked_at ? html`<div class="muted small">checked ${when(live.checked_at)}</div>` : null}</td>
    <td class="actions">
      ${p.connected
        ? html`<button type="button" disabled=${busy} onClick=${() => act(() => connect(p.provider, true))}>
            Reconnect ${p.provider}</button>
          <button type="button" class="danger" disabled=${busy}
            onClick=${() => act(() => api('DELETE', `/api/mcp/auth/${encodeURIComponent(p.provider)}`)
              .then((r) => (r.status === 200 ? true : r)))}>Disconnect ${p.provider}</button>`
        : html`<button type="button" class="primary" disabled=${busy}
            onClick=${() => act(() => connect(p.provider, !!status))}>
            ${status && status !== 'DISCONNECTED' ? 'Reconnect' : 'Connect'} ${p.provider}</button>`}
    </td>
  </tr>`;
}

export function Integrations() {
  const providers = useLoad('/api/mcp/auth/providers');
  const status = useLoad('/api/mcp/auth/status');
  const connectors = useLoad('/api/connectors');
  const [error, setError] = useState(null);
  const reload = () => {
    providers.reload();
    status.reload();
    connectors.reload();
  };
  const live = (status.data && status.data.providers) || {};
  return html`<section aria-labelledby="h-int">
    <h1 id="h-int">Integrations</h1>
    <${ErrorLine} error=${error}/>
    <h2>Providers</h2>
    ${providers.loading ? html`<${Loading} what="providers"/>` : null}
    <${ErrorLine} error=${providers.error}/>
    ${providers.data && html`<div class="table-wrap"><table>
      <caption class="sr-only">Providers and their connection status</caption>
      <thead><tr><th scope="col">Provider</th><th scope="col">Status</th><th scope="col">Actions</th></tr></thead>
      <tbody>${providers.data.providers.map((p) => html`<${ProviderRow} key=${p.provider} p=${p}
        live=${live[p.provider]} onChanged=${reload} setError=${setError}/>`)}</tbody>
    </table></div>`}
    ${providers.data && providers.data.providers.length === 0 ? html`<p class="muted">No provider is configured (COMPOSIO_AUTH_CONFIG_&lt;PROVIDER&gt;).</p>` : null}
    <h2>Connectors</h2>
    ${connectors.loading ? html`<${Loading} what="connectors"/>` : null}
    <${ErrorLine} error=${connectors.error}/>
    ${connectors.data && connectors.data.connectors.length === 0 ? html`<p class="muted">No connectors yet (POST /api/connectors/api or /api/connectors/mcp).</p>` : null}
    ${connectors.data && connectors.data.connectors.length > 0 && html`<div class="table-wrap"><table>
      <caption class="sr-only">Your connectors</caption>
      <thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Auth</th><th scope="col">Actions</th></tr></thead>
      <tbody>${connectors.data.connectors.map((c) => html`<tr key=${c.id}>
        <th scope="row">${c.name}<div class="muted small">${c.id}</div></th>
        <td>${c.type || c.kind}</td>
        <td>${c.auth_status ? html`<${StatusBadge} status=${c.auth_status}/>` : html`<span class="muted">static</span>`}</td>
        <td class="actions">${c.auth_status
          ? html`<button type="button" class="primary" onClick=${async () => {
              setError(null);
              const r = await connect('connector:' + c.id);
              if (r && r !== true) setError(r);
              reload();
            }}>${c.auth_status === 'ACTIVE' ? 'Reconnect' : 'Connect'} ${c.name}</button>`
          : null}</td>
      </tr>`)}</tbody>
    </table></div>`}
  </section>`;
}
