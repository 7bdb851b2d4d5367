// Small shared pieces of the pages: navigation, loading a route's JSON, an error line, JSON shown
// as text, and times.
import { useEffect, useState, useCallback } from 'preact/hooks';
import { api } from './api.js';
import { html } from './html.js';

export function navigate(path) {
  if (path === location.pathname + location.search) return;
  history.pushState(null, '', path);
  window.dispatchEvent(new Event('toolgate:navigate'));
}

// A link the router handles without a page load (still a real <a href> for the keyboard, new
// tabs and screen readers).
export function Link({ href, children, ...rest }) {
  const onClick = (e) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} onClick=${onClick} ...${rest}>${children}</a>`;
}

// GET path once (and again on reload()): {data, error, loading, reload}.
export function useLoad(path) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    if (!path) return undefined;
    api('GET', path).then((r) => {
      if (!live) return;
      if (r.status >= 200 && r.status < 300) setState({ data: r.body, error: null, loading: false });
      else setState({ data: null, error: r, loading: false });
    });
    return () => {
      live = false;
    };
  }, [path, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

export function errorText(r) {
  if (!r) return '';
  const b = r.body || {};
  return `${r.status ? 'HTTP ' + r.status + ': ' : ''}${b.error || 'error'}${b.message ? ' — ' + b.message : ''}`;
}

export function ErrorLine({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${typeof error === 'string' ? error : errorText(error)}</p>`;
}

export function Loading({ what }) {
  return html`<p class="muted" aria-live="polite">Loading ${what || ''}…</p>`;
}

export function Json({ value, label }) {
  return html`<pre class="json" tabindex="0" aria-label=${label || 'JSON'}>${JSON.stringify(value, null, 2)}</pre>`;
}

export function when(ms) {
  if (ms === null || ms === undefined) return '';
  const d = new Date(typeof ms === 'number' ? ms : Date.parse(ms));
  return isNaN(d) ? String(ms) : d.toLocaleString();
}

export function StatusBadge({ status }) {
  return html`<span class=${'badge status-' + (status || 'none')}>${status || 'none'}</span>`;
}
