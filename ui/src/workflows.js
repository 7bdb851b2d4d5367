// Workflows: the list, one workflow (its graph, the run form generated from the Start node's
// inputVariables, the JSON editor), and a new one. A 422 invalid_workflow is listed and drawn on
// the nodes it names; a 409 oauth_refresh_required opens the reconnect dialog, and the inputs
// typed so far are kept in sessionStorage so that Run works again after the OAuth round trip
// without retyping (secret inputs excepted: they are never stored).
import { useMemo, useState } from 'preact/hooks';
import { api, forget, keep, kept } from './api.js';
import { Graph } from './graph.js';
import { html } from './html.js';
import { ReconnectDialog } from './reconnect.js';
import { ErrorLine, Link, Loading, navigate, useLoad, when } from './ui.js';

const SKELETON = {
  title: 'New workflow',
  nodes: [
    { id: 'start', type: 'Start', name: 'Start', config: { inputVariables: [] } },
    { id: 'end', type: 'End', name: 'End', config: {} },
  ],
  connections: [{ id: 'c1', from: 'start', to: 'end' }],
};

export function WorkflowList() {
  const list = useLoad('/api/workflows');
  return html`<section aria-labelledby="h-wf">
    <h1 id="h-wf">Workflows</h1>
    <p><${Link} href="/workflows/new" class="button primary">New workflow</${Link}></p>
    ${list.loading ? html`<${Loading} what="workflows"/>` : null}
    <${ErrorLine} error=${list.error}/>
    ${list.data && list.data.workflows.length === 0 ? html`<p class="muted">No workflows yet.</p>` : null}
    ${list.data && list.data.workflows.length > 0 && html`<ul class="cards">
      ${list.data.workflows.map((w) => html`<li key=${w.id} class="card">
        <${Link} href=${'/workflows/' + w.id}>${w.name || w.id}</${Link}>
        <div class="muted small">${w.id} · updated ${when(w.updated_at)}</div>
      </li>`)}
    </ul>`}
  </section>`;
}

function startInputs(def) {
  const start = ((def && def.nodes) || []).find((n) => n && n.type === 'Start');
  const vars = start && start.config && start.config.inputVariables;
  return Array.isArray(vars) ? vars.filter((v) => v && v.name) : [];
}

function parseInput(v, raw) {
  if (v.type === 'number') return raw === '' ? undefined : Number(raw);
  if (v.type === 'boolean') return !!raw;
  if (v.type === 'object' || v.type === 'array') {
    if (raw === '') return undefined;
    try {
      return JSON.parse(raw);
    } catch {
      return raw; // the gateway's 422 names the field
    }
  }
  return raw;
}

function RunForm({ wf, def }) {
  const vars = startInputs(def);
  const saved = kept('inputs.' + wf.id) || {};
  const [values, setValues] = useState(saved);
  const [secrets, setSecrets] = useState({});
  const [error, setError] = useState(null);
  const [fieldErrors, setFieldErrors] = useState({});
  const [blocked, setBlocked] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (v, raw) => {
    if (v.secret) {
      setSecrets({ ...secrets, [v.name]: raw });
      return;
    }
    const next = { ...values, [v.name]: raw };
    setValues(next);
    keep('inputs.' + wf.id, next);
  };
  const run = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setFieldErrors({});
    const inputs = {};
    for (const v of vars) {
      const raw = v.secret ? secrets[v.name] : values[v.name];
      const x = parseInput(v, raw === undefined ? (v.type === 'boolean' ? false : '') : raw);
      if (x !== undefined && !(x === '' && !v.required)) inputs[v.name] = x;
    }
    const r = await api('POST', `/api/workflows/${encodeURIComponent(wf.id)}/run`, { inputs });
    setBusy(false);
    if (r.status === 202) {
      navigate('/runs/' + r.body.run_id);
    } else if (r.status === 409 && r.body && r.body.error === 'oauth_refresh_required') {
      setBlocked(r.body);
    } else {
      if (r.body && Array.isArray(r.body.errors)) {
        const fe = {};
        for (const x of r.body.errors) fe[x.field] = x.message;
        setFieldErrors(fe);
      }
      setError(r);
    }
  };
  return html`<form class="run-form" onSubmit=${run} aria-labelledby="h-run">
    <h2 id="h-run">Run</h2>
    ${vars.length === 0 ? html`<p class="muted">This workflow takes no inputs.</p>` : null}
    ${vars.map((v) => {
      const id = 'in-' + v.name;
      const raw = v.secret ? secrets[v.name] || '' : values[v.name] === undefined ? '' : values[v.name];
      const err = fieldErrors[v.name] || fieldErrors['inputs.' + v.name];
      const desc = err ? id + '-err' : undefined;
      let input;
      if (v.type === 'boolean')
        input = html`<input id=${id} type="checkbox" checked=${!!raw} aria-describedby=${desc}
                            onChange=${(e) => set(v, e.target.checked)}/>`;
      else if (v.type === 'object' || v.type === 'array')
        input = html`<textarea id=${id} rows="3" value=${raw} aria-describedby=${desc}
                               onInput=${(e) => set(v, e.target.value)}></textarea>`;
      else
        input = html`<input id=${id} type=${v.secret ? 'password' : v.type === 'number' ? 'number' : 'text'}
                            step=${v.type === 'number' ? 'any' : undefined} value=${raw}
                            required=${!!v.required} aria-describedby=${desc} autocomplete="off"
                            onInput=${(e) => set(v, e.target.value)}/>`;
      return html`<div class="field" key=${v.name}>
        <label for=${id}>${v.name}${v.required ? ' *' : ''} <span class="muted small">${v.type || 'string'}</span></label>
        ${input}
        ${err ? html`<div id=${id + '-err'} class="error small">${err}</div>` : null}
      </div>`;
    })}
    <${ErrorLine} error=${error}/>
    <button type="submit" class="primary" disabled=${busy}>Run</button>
    ${blocked && html`<${ReconnectDialog} providers=${blocked.providers} reasons=${blocked.reasons}
        onClose=${() => setBlocked(null)} onConnected=${() => setBlocked(null)}/>`}
  </form>`;
}

function nodeErrors(errors) {
  const out = {};
  for (const e of errors || []) {
    if (e.node === null || e.node === undefined) continue;
    const k = String(e.node);
    (out[k] = out[k] || []).push(`${e.field}: ${e.message}`);
  }
  return out;
}

function Editor({ wf, onSaved }) {
  const [name, setName] = useState(wf ? wf.name : '');
  const [text, setText] = useState(JSON.stringify(wf ? wf.definition : SKELETON, null, 2));
  const [errors, setErrors] = useState(null);
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(false);
  const parsed = useMemo(() => {
    try {
      return { def: JSON.parse(text) };
    } catch (e) {
      return { err: String(e.message || e) };
    }
  }, [text]);
  const save = async (e) => {
    e.preventDefault();
    setErrors(null);
    setError(null);
    setSaved(false);
    if (parsed.err) {
      setError('The definition is not JSON: ' + parsed.err);
      return;
    }
    const body = { name: name || (parsed.def && parsed.def.title) || 'workflow', definition: parsed.def };
    const r = wf
      ? await api('PUT', `/api/workflows/${encodeURIComponent(wf.id)}`, body)
      : await api('POST', '/api/workflows', body);
    if (r.status === 200 || r.status === 201) {
      setSaved(true);
      onSaved(r.body);
    } else if (r.status === 422 && r.body && Array.isArray(r.body.errors)) {
      setErrors(r.body.errors);
      setError(r);
    } else {
      setError(r);
    }
  };
  const byNode = nodeErrors(errors);
  return html`<form class="editor" onSubmit=${save} aria-labelledby="h-edit">
    <h2 id="h-edit">${wf ? 'Edit the definition' : 'Definition'}</h2>
    <div class="field"><label for="wf-name">Name</label>
      <input id="wf-name" value=${name} onInput=${(e) => setName(e.target.value)}/></div>
    <div class="editor-cols">
      <div class="field"><label for="wf-json">Definition (JSON: nodes and connections)</label>
        <textarea id="wf-json" class="code" rows="22" spellcheck="false" value=${text}
                  aria-describedby=${errors ? 'wf-errors' : undefined}
                  onInput=${(e) => setText(e.target.value)}></textarea>
        ${parsed.err ? html`<div class="error small">Not JSON yet: ${parsed.err}</div>` : null}
      </div>
      <div>${parsed.def ? html`<${Graph} definition=${parsed.def} errors=${byNode} label="Graph of the definition being edited"/>` : null}</div>
    </div>
    <${ErrorLine} error=${error}/>
    ${errors && html`<ul id="wf-errors" class="errors" aria-label="Problems in the definition">
      ${errors.map((e, i) => html`<li key=${i}>${e.node !== null && e.node !== undefined ? html`<strong>node ${String(e.node)}</strong> ` : ''}<code>${e.field}</code>: ${e.message}</li>`)}
    </ul>`}
    ${saved ? html`<p class="ok" role="status">Saved.</p>` : null}
    <button type="submit" class="primary">${wf ? 'Save changes' : 'Create workflow'}</button>
  </form>`;
}

export function NewWorkflow() {
  return html`<section aria-labelledby="h-new">
    <h1 id="h-new">New workflow</h1>
    <${Editor} onSaved=${(w) => navigate('/workflows/' + w.id)}/>
  </section>`;
}

export function WorkflowPage({ id }) {
  const wf = useLoad('/api/workflows/' + encodeURIComponent(id));
  const [editing, setEditing] = useState(false);
  if (wf.loading) return html`<${Loading} what="the workflow"/>`;
  if (wf.error) return html`<${ErrorLine} error=${wf.error}/>`;
  const w = wf.data;
  return html`<section aria-labelledby="h-wfp">
    <h1 id="h-wfp">${w.name || w.id}</h1>
    <p class="muted small">${w.id} · <${Link} href=${'/runs?workflow_id=' + encodeURIComponent(w.id)}>its runs</${Link}></p>
    <div class="two-cols">
      <${Graph} definition=${w.definition} label=${'Graph of ' + (w.name || w.id)}/>
      <${RunForm} wf=${w} def=${w.definition}/>
    </div>
    <p><button type="button" aria-expanded=${editing} onClick=${() => setEditing(!editing)}>
      ${editing ? 'Close the editor' : 'Edit the definition'}</button>
      ${' '}<button type="button" class="danger" onClick=${async () => {
        const r = await api('DELETE', '/api/workflows/' + encodeURIComponent(w.id));
        if (r.status === 200) {
          forget('inputs.' + w.id);
          navigate('/workflows');
        } else alert((r.body && r.body.message) || 'Not deleted: HTTP ' + r.status);
      }}>Delete</button></p>
    ${editing && html`<${Editor} wf=${w} onSaved=${() => wf.reload()}/>`}
  </section>`;
}
