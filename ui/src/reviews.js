// Reviews: the caller's pending HITL reviews, each with a button per allowed decision and an
// optional comment; a decision requeues the waiting run.
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { html } from './html.js';
import { ErrorLine, Link, Loading, useLoad, when } from './ui.js';

function Review({ r, onDecided }) {
  const [comment, setComment] = useState('');
  const [error, setError] = useState(null);
  const decide = async (decision) => {
    const body = { decision };
    if (comment) body.comment = comment;
    const a = await api('POST', `/api/reviews/${encodeURIComponent(r.id)}/decision`, body);
    if (a.status === 200) onDecided();
    else setError(a);
  };
  const cid = 'c-' + r.id;
  return html`<li class="card review">
    <h2>${r.title || 'Review'} ${r.priority ? html`<span class="badge">${r.priority}</span>` : null}</h2>
    <p>${r.message}</p>
    <p class="muted small">run <${Link} href=${'/runs/' + r.run_id}>${r.run_id}</${Link}> · node ${r.node_id}
      · asked ${when(r.created_at)} · expires ${when(r.expires_at)}</p>
    <div class="field"><label for=${cid}>Comment (optional)</label>
      <textarea id=${cid} rows="2" value=${comment} onInput=${(e) => setComment(e.target.value)}></textarea></div>
    <div class="actions">${(r.allowed_decisions || []).map((d, i) => html`<button key=${d} type="button"
        class=${i === 0 ? 'primary' : ''} onClick=${() => decide(d)}>${d}</button>`)}</div>
    <${ErrorLine} error=${error}/>
  </li>`;
}

export function Reviews() {
  const list = useLoad('/api/reviews?status=pending');
  return html`<section aria-labelledby="h-rev">
    <h1 id="h-rev">Reviews</h1>
    <p><button type="button" onClick=${list.reload}>Refresh</button></p>
    ${list.loading ? html`<${Loading} what="reviews"/>` : null}
    <${ErrorLine} error=${list.error}/>
    ${list.data && list.data.reviews.length === 0 ? html`<p class="muted">Nothing waits for a decision.</p>` : null}
    ${list.data && html`<ul class="cards">${list.data.reviews.map((r) => html`<${Review} key=${r.id} r=${r} onDecided=${list.reload}/>`)}</ul>`}
  </section>`;
}
