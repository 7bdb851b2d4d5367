// A workflow definition drawn as SVG, laid out by dagre (top to bottom): one box per node,
// coloured by its status in a run (statuses: node id -> pending|running|success|failed|
// skipped|waiting|unknown) and outlined in red where a 422 names it (errors: node id -> [text]).
import dagre from '@dagrejs/dagre';
import { html } from './html.js';

const W = 170;
const H = 46;

function layout(def) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 24, ranksep: 36, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  const nodes = Array.isArray(def && def.nodes) ? def.nodes : [];
  const ids = new Set();
  for (const n of nodes) {
    if (!n || n.id === undefined || n.id === null) continue;
    const id = String(n.id);
    ids.add(id);
    g.setNode(id, { width: W, height: H, node: n });
  }
  for (const c of Array.isArray(def && def.connections) ? def.connections : []) {
    if (c && ids.has(String(c.from)) && ids.has(String(c.to))) g.setEdge(String(c.from), String(c.to));
  }
  dagre.layout(g);
  return g;
}

function clip(s, n) {
  s = String(s == null ? '' : s);
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}

export function Graph({ definition, statuses, errors, label }) {
  let g;
  try {
    g = layout(definition);
  } catch {
    return html`<p class="muted">The graph cannot be drawn from this definition.</p>`;
  }
  const gr = g.graph();
  const width = Math.max(gr.width || 0, W + 16);
  const height = Math.max(gr.height || 0, H + 16);
  const st = statuses || {};
  const errs = errors || {};
  return html`<figure class="graph">
    <svg viewBox="0 0 ${width} ${height}" width=${width} height=${height} role="img"
         aria-label=${label || 'Workflow graph'}>
      <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7"
        markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>
      ${g.edges().map((e) => {
        const pts = g.edge(e).points || [];
        const d = pts.map((p, i) => (i ? 'L' : 'M') + p.x.toFixed(1) + ',' + p.y.toFixed(1)).join(' ');
        return html`<path key=${e.v + '>' + e.w} d=${d} class="edge" marker-end="url(#arrow)"/>`;
      })}
      ${g.nodes().map((id) => {
        const n = g.node(id);
        const status = st[id] || 'idle';
        const bad = errs[id] && errs[id].length;
        return html`<g key=${id} class=${'node status-' + status + (bad ? ' has-error' : '')}
                      transform="translate(${n.x - W / 2},${n.y - H / 2})" data-node=${id}
                      data-status=${status}>
          <title>${(n.node.name || id) + ' (' + n.node.type + '): ' + status +
                   (bad ? ' — ' + errs[id].join('; ') : '')}</title>
          <rect width=${W} height=${H} rx="6"/>
          <text x="10" y="19" class="node-name">${clip(n.node.name || id, 22)}</text>
          <text x="10" y="36" class="node-type">${clip(n.node.type, 12) + ' · ' + status}</text>
        </g>`;
      })}
    </svg>
  </figure>`;
}
