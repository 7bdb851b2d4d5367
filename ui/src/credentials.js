// Credentials: the caller's named secrets for API nodes. Values are sent once and never shown
// back (the gateway answers only name, type, hosts and non-secret meta).
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { html } from './html.js';
import { ErrorLine, Loading, useLoad, when } from './ui.js';

const SECRET_FIELDS = { bearer: ['token'], api_key: ['value'], basic: ['username', 'password'] };

export function Credentials() {
  const list = useLoad('/api/credentials');
  const [form, setForm] = useState({ name: '', type: 'bearer', hosts: '' });
  const [secret, setSecret] = useState({});
  const [error, setError] = useState(null);
  const add = async (e) => {
    e.preventDefault();
    setError(null);
    const body = { name: form.name, type: form.type, ...secret };
    const hosts = form.hosts.split(/[\s,]+/).filter(Boolean);
    if (hosts.length) body.hosts = hosts;
    const r = await api('POST', '/api/credentials', body);
    if (r.status === 200 || r.status === 201) {
      setSecret({});
      setForm({ name: '', type: form.type, hosts: '' });
      list.reload();
    } else setError(r);
  };
  const del = async (name) => {
    const r = await api('DELETE', '/api/credentials/' + encodeURIComponent(name));
    if (r.status !== 204) setError(r);
    list.reload();
  };
  return html`<section aria-labelledby="h-cred">
    <h1 id="h-cred">Credentials</h1>
    <form class="panel" onSubmit=${add} aria-labelledby="h-addcred" autocomplete="off">
      <h2 id="h-addcred">Add a credential</h2>
      <div class="field"><label for="c-name">Name</label>
        <input id="c-name" required pattern="[A-Za-z0-9_.\\-]{1,64}" value=${form.name}
               onInput=${(e) => setForm({ ...form, name: e.target.value })}/></div>
      <div class="field"><label for="c-type">Type</label>
        <select id="c-type" value=${form.type} onChange=${(e) => { setSecret({}); setForm({ ...form, type: e.target.value }); }}>
          <option value="bearer">bearer</option><option value="api_key">api_key</option><option value="basic">basic</option>
        </select></div>
      ${SECRET_FIELDS[form.type].map((f) => html`<div class="field" key=${f}><label for=${'c-' + f}>${f}</label>
        <input id=${'c-' + f} type=${f === 'username' ? 'text' : 'password'} required value=${secret[f] || ''}
               onInput=${(e) => setSecret({ ...secret, [f]: e.target.value })}/></div>`)}
      <div class="field"><label for="c-hosts">Hosts it serves (optional, comma separated)</label>
        <input id="c-hosts" value=${form.hosts} onInput=${(e) => setForm({ ...form, hosts: e.target.value })}/></div>
      <${ErrorLine} error=${error}/>
      <button type="submit" class="primary">Add credential</button>
    </form>
    ${list.loading ? html`<${Loading} what="credentials"/>` : null}
    <${ErrorLine} error=${list.error}/>
    ${list.data && list.data.credentials.length === 0 ? html`<p class="muted">No credentials.</p>` : null}
    ${list.data && list.data.credentials.length > 0 && html`<div class="table-wrap"><table>
      <caption class="sr-only">Your credentials (values are never shown)</caption>
      <thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Hosts</th><th scope="col">Updated</th><th scope="col">Actions</th></tr></thead>
      <tbody>${list.data.credentials.map((c) => html`<tr key=${c.name}>
        <th scope="row">${c.name}</th><td>${c.type}</td><td>${(c.hosts || []).join(', ')}</td><td>${when(c.updated_at)}</td>
        <td><button type="button" class="danger" onClick=${() => del(c.name)}>Delete ${c.name}</button></td></tr>`)}</tbody>
    </table></div>`}
  </section>`;
}
