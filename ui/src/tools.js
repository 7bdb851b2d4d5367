// Tools: the catalog the caller's agents can use (GET /api/agents/available-tools) and creating a
// tool from one of the caller's connectors.
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { html } from './html.js';
import { ErrorLine, Loading, useLoad } from './ui.js';

export function Tools() {
  const tools = useLoad('/api/agents/available-tools');
  const connectors = useLoad('/api/connectors');
  const [form, setForm] = useState({ connector_id: '', tool_name: '', tool_description: '' });
  const [error, setError] = useState(null);
  const [created, setCreated] = useState(null);
  const create = async (e) => {
    e.preventDefault();
    setError(null);
    setCreated(null);
    const body = { connector_id: form.connector_id, tool_name: form.tool_name };
    if (form.tool_description) body.tool_description = form.tool_description;
    const r = await api('POST', '/api/agents/create-tool-from-connector', body);
    if (r.status === 201) {
      setCreated(r.body);
      tools.reload();
    } else setError(r);
  };
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  const list = (connectors.data && connectors.data.connectors) || [];
  return html`<section aria-labelledby="h-tools">
    <h1 id="h-tools">Tools</h1>
    <form class="panel" onSubmit=${create} aria-labelledby="h-newtool">
      <h2 id="h-newtool">Create a tool from a connector</h2>
      <div class="field"><label for="t-conn">Connector</label>
        <select id="t-conn" required value=${form.connector_id} onChange=${set('connector_id')}>
          <option value="">choose…</option>
          ${list.map((c) => html`<option key=${c.id} value=${c.id}>${c.name}</option>`)}
        </select></div>
      <div class="field"><label for="t-name">Tool name</label>
        <input id="t-name" required value=${form.tool_name} onInput=${set('tool_name')}/></div>
      <div class="field"><label for="t-desc">Description</label>
        <input id="t-desc" value=${form.tool_description} onInput=${set('tool_description')}/></div>
      <${ErrorLine} error=${error}/>
      ${created ? html`<p class="ok" role="status">Created ${created.name}.</p>` : null}
      <button type="submit" class="primary" disabled=${list.length === 0}>Create tool</button>
      ${list.length === 0 ? html`<p class="muted small">You have no connectors yet.</p>` : null}
    </form>
    <h2>Available tools ${tools.data ? html`<span class="muted">(${tools.data.count})</span>` : null}</h2>
    ${tools.loading ? html`<${Loading} what="tools"/>` : null}
    <${ErrorLine} error=${tools.error}/>
    ${tools.data && tools.data.degraded ? html`<p class="error">The registry could not be read: built-ins only.</p>` : null}
    ${tools.data && html`<div class="table-wrap"><table>
      <caption class="sr-only">Available tools</caption>
      <thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Origin</th><th scope="col">Description</th></tr></thead>
      <tbody>${tools.data.tools.map((t) => html`<tr key=${t.tool_id}>
        <th scope="row">${t.name}</th><td>${t.type}</td><td>${t.origin}</td><td>${t.description}</td></tr>`)}</tbody>
    </table></div>`}
  </section>`;
}
