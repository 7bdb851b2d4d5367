// Runs: the list (status and workflow filters) and one run: its graph coloured live from
// GET /api/runs/{id}/events (SSE), the output, the model tokens (the run's and each node's),
// each node's status, error class and output (an Agent's answer text and keys, a Code node's
// stdout and names), the tool executions with their arguments and answers, and the actions its
// status allows (cancel;
// reconnect then retry for a run in attention for oauth_refresh_required; retry, skip or fail
// the node of an outcome_unknown attention).
import { useEffect, useState } from 'preact/hooks';
import { api, followEvents } from './api.js';
import { Graph } from './graph.js';
import { html } from './html.js';
import { ReconnectDialog } from './reconnect.js';
import { ErrorLine, Json, Link, Loading, StatusBadge, navigate, useLoad, when } from './ui.js';

const STATUSES = ['queued', 'running', 'waiting', 'attention', 'succeeded', 'failed', 'canceled'];
const FINAL = new Set(['succeeded', 'failed', 'canceled', 'attention']);

export function RunList() {
  const q = new URLSearchParams(location.search);
  const status = q.get('status') || '';
  const workflow = q.get('workflow_id') || '';
  const params = new URLSearchParams({ limit: '50' });
  if (status) params.set('status', status);
  if (workflow) params.set('workflow_id', workflow);
  const runs = useLoad('/api/runs?' + params);
  const wfs = useLoad('/api/workflows');
  const names = {};
  for (const w of (wfs.data && wfs.data.workflows) || []) names[w.id] = w.name;
  const filter = (k, v) => {
    const n = new URLSearchParams(location.search);
    if (v) n.set(k, v);
    else n.delete(k);
    navigate('/runs' + (n.toString() ? '?' + n : ''));
  };
  return html`<section aria-labelledby="h-runs">
    <h1 id="h-runs">Runs</h1>
    <div class="filters">
      <div class="field"><label for="f-status">Status</label>
        <select id="f-status" value=${status} onChange=${(e) => filter('status', e.target.value)}>
          <option value="">any</option>
          ${STATUSES.map((s) => html`<option key=${s} value=${s}>${s}</option>`)}
        </select></div>
      <div class="field"><label for="f-wf">Workflow</label>
        <select id="f-wf" value=${workflow} onChange=${(e) => filter('workflow_id', e.target.value)}>
          <option value="">any</option>
          ${Object.keys(names).map((id) => html`<option key=${id} value=${id}>${names[id] || id}</option>`)}
        </select></div>
    </div>
    ${runs.loading ? html`<${Loading} what="runs"/>` : null}
    <${ErrorLine} error=${runs.error}/>
    ${runs.data && runs.data.runs.length === 0 ? html`<p class="muted">No runs.</p>` : null}
    ${runs.data && runs.data.runs.length > 0 && html`<div class="table-wrap"><table>
      <caption class="sr-only">Runs, newest first</caption>
      <thead><tr><th scope="col">Run</th><th scope="col">Workflow</th><th scope="col">Status</th><th scope="col">Created</th></tr></thead>
      <tbody>${runs.data.runs.map((r) => html`<tr key=${r.id}>
        <th scope="row"><${Link} href=${'/runs/' + r.id}>${r.id}</${Link}></th>
        <td>${names[r.workflow_id] || r.workflow_id}</td>
        <td><${StatusBadge} status=${r.status}/>${r.error_class ? html` <span class="small">${r.error_class}</span>` : null}</td>
        <td>${when(r.created_at)}</td>
      </tr>`)}</tbody>
    </table></div>`}
  </section>`;
}

function statusesOf(run) {
  const out = {};
  for (const n of (run && run.nodes) || []) out[String(n.id)] = n.status === 'pending' ? 'running' : n.status;
  return out;
}

function applyEvent(st, ev) {
  const id = ev.node_id === null || ev.node_id === undefined ? null : String(ev.node_id);
  if (!id) return st;
  const d = ev.data || {};
  const next = { ...st };
  if (ev.type === 'node_started' || ev.type === 'resumed') next[id] = 'running';
  else if (ev.type === 'node_finished') next[id] = d.status || 'success';
  else if (ev.type === 'node_skipped') next[id] = 'skipped';
  else if (ev.type === 'waiting') next[id] = 'waiting';
  return next;
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function tokens(x) {
  const i = (x && x.input_tokens) || 0;
  const o = (x && x.output_tokens) || 0;
  return i || o ? `${i} in · ${o} out` : '';
}

// The names an output binds (what later nodes read as run variables), one line each.
function Names({ value, skip, label }) {
  const keys = Object.keys(value).filter((k) => !skip.includes(k));
  if (keys.length === 0) return null;
  return html`<dl class="names" aria-label=${label}>${keys.map((k) => html`<div key=${k}>
    <dt><code>${k}</code></dt>
    <dd>${typeof value[k] === 'string' ? value[k] : html`<code>${JSON.stringify(value[k])}</code>`}</dd>
  </div>`)}</dl>`;
}

// One node's output, shaped by its type: an Agent's answer text then its keys; a Code node's
// stdout (and stderr) then the names it bound; anything else as JSON.
function NodeOutput({ node, name }) {
  const id = String(node.id);
  const out = node.output;
  const title = `${name || id} (${node.type})`;
  let body;
  if (node.type === 'Agent' && isObject(out)) {
    body = html`${typeof out.text === 'string' ? html`<h4>Answer</h4>
        <pre class="text" tabindex="0" aria-label=${'Answer of ' + title}>${out.text}</pre>` : null}
      <${Names} value=${out} skip=${['text']} label=${'Keys of ' + title}/>`;
  } else if (node.type === 'Code' && isObject(out)) {
    body = html`<h4>stdout</h4>
      <pre class="text" tabindex="0" aria-label=${'Standard output of ' + title}>${out.stdout || ''}</pre>
      ${out.stderr ? html`<h4>stderr</h4><pre class="text error" tabindex="0" aria-label=${'Standard error of ' + title}>${out.stderr}</pre>` : null}
      <${Names} value=${out} skip=${['stdout', 'stderr']} label=${'Names bound by ' + title}/>`;
  } else {
    body = html`<${Json} value=${out} label=${'Output of ' + title}/>`;
  }
  const t = tokens(node);
  return html`<section class="node-output" data-node=${id} aria-labelledby=${'out-' + id}>
    <h3 id=${'out-' + id}>${title}${t ? html` <span class="muted small">· tokens ${t}</span>` : null}</h3>
    ${body}
  </section>`;
}

function Attention({ run, onDone }) {
  const [error, setError] = useState(null);
  const [dialog, setDialog] = useState(false);
  const m = run.metadata || {};
  const retry = async () => {
    const r = await api('POST', `/api/runs/${encodeURIComponent(run.id)}/retry`, {});
    if (r.status === 202) navigate('/runs/' + r.body.run_id);
    else if (r.status === 409 && r.body.error === 'oauth_refresh_required') {
      m.providers = r.body.providers;
      m.reasons = r.body.reasons;
      setDialog(true);
    } else setError(r);
  };
  const resolve = async (action) => {
    const r = await api('POST', `/api/runs/${encodeURIComponent(run.id)}/resolve`, { node_id: String(m.node_id), action });
    if (r.status === 200) onDone();
    else setError(r);
  };
  if (m.reason === 'outcome_unknown' || run.error_class === 'outcome_unknown') {
    return html`<div class="panel attention" role="region" aria-label="Needs your decision">
      <h2>The outcome of node ${String(m.node_id)} is unknown</h2>
      <p>A call was in flight when its worker stopped; it may or may not have taken effect.</p>
      <div class="actions">
        <button type="button" class="primary" onClick=${() => resolve('retry')}>Call it again</button>
        <button type="button" onClick=${() => resolve('skip')}>Skip it (count as done)</button>
        <button type="button" class="danger" onClick=${() => resolve('fail')}>Fail the run</button>
      </div>
      <${ErrorLine} error=${error}/>
    </div>`;
  }
  const providers = m.providers || [];
  return html`<div class="panel attention" role="region" aria-label="Needs attention">
    <h2>This run needs attention</h2>
    ${providers.length ? html`<p>Reconnect, then retry the run:</p>
      <ul>${providers.map((p) => html`<li key=${p}><strong>${p}</strong>: ${(m.reasons || {})[p] || ''}</li>`)}</ul>
      <button type="button" onClick=${() => setDialog(true)}>Reconnect…</button>` : null}
    <button type="button" class="primary" onClick=${retry}>Retry the run</button>
    <${ErrorLine} error=${error}/>
    ${dialog && html`<${ReconnectDialog} providers=${m.providers} reasons=${m.reasons}
       title="Reconnect to retry this run" onClose=${() => setDialog(false)} onConnected=${() => setDialog(false)}/>`}
  </div>`;
}

export function RunPage({ id }) {
  const [run, setRun] = useState(null);
  const [error, setError] = useState(null);
  const [def, setDef] = useState(null);
  const [statuses, setStatuses] = useState({});
  const [events, setEvents] = useState([]);
  const [execs, setExecs] = useState(null);
  const [tick, setTick] = useState(0);
  const path = '/api/runs/' + encodeURIComponent(id);

  const load = async () => {
    const r = await api('GET', path);
    if (r.status !== 200) {
      setError(r);
      return null;
    }
    setRun(r.body);
    setStatuses((s) => ({ ...s, ...statusesOf(r.body) }));
    const x = await api('GET', path + '/tool-executions');
    if (x.status === 200) setExecs(x.body.tool_executions);
    return r.body;
  };

  useEffect(() => {
    const ctl = new AbortController();
    setEvents([]);
    (async () => {
      const r = await load();
      if (!r) return;
      const w = await api('GET', '/api/workflows/' + encodeURIComponent(r.workflow_id));
      if (w.status === 200) setDef(w.body.definition);
      if (FINAL.has(r.status)) return;
      await followEvents(id, 0, (ev) => {
        setEvents((list) => [...list, ev]);
        setStatuses((s) => applyEvent(s, ev));
        if (ev.type === 'run_finished' || ev.type === 'waiting' || ev.type === 'node_finished') load();
      }, ctl.signal);
      if (!ctl.signal.aborted) load();
    })();
    return () => ctl.abort();
  }, [id, tick]);

  if (error) return html`<${ErrorLine} error=${error}/>`;
  if (!run) return html`<${Loading} what="the run"/>`;
  const cancelable = ['queued', 'running', 'waiting'].includes(run.status);
  const names = {};
  for (const n of (def && def.nodes) || []) if (n && n.id !== undefined) names[String(n.id)] = n.name;
  const outputs = (run.nodes || []).filter((n) => n.output !== null && n.output !== undefined);
  const used = tokens(run.usage);
  return html`<section aria-labelledby="h-run">
    <h1 id="h-run">Run ${run.id}</h1>
    <p>Status: <span id="run-status" role="status" aria-live="polite" data-status=${run.status}><${StatusBadge} status=${run.status}/></span>
      ${run.error_class ? html` <span class="badge status-failed">${run.error_class}</span>` : null}
      ${' · workflow '}<${Link} href=${'/workflows/' + run.workflow_id}>${run.workflow_id}</${Link}>
      ${' · created ' + when(run.created_at)}</p>
    ${used ? html`<p id="run-usage">Model tokens: ${used}</p>` : null}
    ${run.error ? html`<p class="error">Error${run.error_class ? ' (' + run.error_class + ')' : ''}: ${run.error}</p>` : null}
    ${run.status === 'waiting' ? html`<p>Waiting for a review: <${Link} href="/reviews">open Reviews</${Link}>.</p>` : null}
    ${run.status === 'attention' ? html`<${Attention} run=${run} onDone=${() => setTick((t) => t + 1)}/>` : null}
    ${cancelable ? html`<p><button type="button" class="danger" onClick=${async () => {
      await api('POST', path + '/cancel', {});
      setTick((t) => t + 1);
    }}>Cancel the run</button></p>` : null}
    <div class="two-cols">
      ${def ? html`<${Graph} definition=${def} statuses=${statuses} label=${'Graph of run ' + run.id}/>` : html`<span></span>`}
      <div>
        <h2>Output</h2>
        ${run.output !== null && run.output !== undefined ? html`<${Json} value=${run.output} label="Run output"/>` : html`<p class="muted">None yet.</p>`}
        <h2>Nodes</h2>
        <div class="table-wrap"><table>
          <caption class="sr-only">Nodes of this run</caption>
          <thead><tr><th scope="col">Node</th><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Error class</th><th scope="col">Tokens</th></tr></thead>
          <tbody>${(run.nodes || []).map((n) => html`<tr key=${n.id}>
            <th scope="row">${names[String(n.id)] || String(n.id)}</th><td>${n.type}</td>
            <td><${StatusBadge} status=${statuses[String(n.id)] || n.status}/></td><td>${n.error_class || ''}</td>
            <td class="small">${tokens(n)}</td></tr>`)}</tbody>
        </table></div>
      </div>
    </div>
    <h2>Node outputs</h2>
    ${outputs.length === 0 ? html`<p class="muted">None yet.</p>` : null}
    ${outputs.map((n) => html`<${NodeOutput} key=${n.id} node=${n} name=${names[String(n.id)]}/>`)}
    <h2>Tool executions</h2>
    ${execs && execs.length === 0 ? html`<p class="muted">None.</p>` : null}
    ${(execs || []).map((x, i) => html`<details key=${i} class="exec" data-tool=${x.tool_name} open=${execs.length <= 5}>
      <summary><strong>${names[x.node_id] || x.node_id}</strong> · ${x.tool_name} · <${StatusBadge} status=${x.status}/>
        ${x.duration_ms !== null && x.duration_ms !== undefined ? ' · ' + x.duration_ms + ' ms' : ''}
        ${x.error_class ? ' · ' + x.error_class : ''}</summary>
      <h3>Arguments</h3><${Json} value=${x.arguments} label="Arguments"/>
      <h3>Answer</h3><${Json} value=${x.response !== undefined ? x.response : x.response_head} label="Answer"/>
      ${x.error ? html`<p class="error">${x.error}</p>` : null}
    </details>`)}
    <h2>Events</h2>
    <ol class="events" aria-live="off">${events.map((e) => html`<li key=${e.seq}><code>${e.type}</code> ${e.node_id || ''} <span class="muted small">${when(e.at)}</span></li>`)}</ol>
    ${events.length === 0 ? html`<p class="muted">Shown while the run is live.</p>` : null}
  </section>`;
}
