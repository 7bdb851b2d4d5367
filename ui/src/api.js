// The gateway's API as the UI calls it: the caller's identity (a JWT sent as Authorization:
// Bearer, or a user name sent as X-User-Id when the gateway trusts that header), kept in
// sessionStorage only (gone with the tab), every call's JSON answer, and the run events stream
// (SSE read through fetch, since EventSource cannot send Authorization).

const KEY = 'toolgate.session';

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || 'null');
  } catch {
    return null;
  }
}

export function signIn(s) {
  sessionStorage.setItem(KEY, JSON.stringify(s));
}

export function signOut() {
  sessionStorage.clear();
}

// A JWT handed over by the embedding product as #token=<jwt>: taken, then wiped from the URL
// so it is neither kept in history nor sent on.
export function takeFragmentToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!m) return false;
  signIn({ mode: 'jwt', token: decodeURIComponent(m[1]) });
  history.replaceState(null, '', location.pathname + location.search);
  return true;
}

function authHeaders() {
  const s = session();
  if (!s) return {};
  return s.mode === 'jwt' ? { Authorization: 'Bearer ' + s.token } : { 'X-User-Id': s.user };
}

// One call: {status, body} (body: the parsed JSON, or null). Never throws on an HTTP status;
// a network failure is status 0 with {error: 'network', message}.
export async function api(method, path, body, extraHeaders) {
  const headers = { ...authHeaders(), ...(extraHeaders || {}) };
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    return { status: 0, body: { error: 'network', message: String(e) } };
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text };
    }
  }
  if (res.status === 401 && session()) window.dispatchEvent(new Event('toolgate:unauthorized'));
  return { status: res.status, body: data };
}

// Follows GET /api/runs/{id}/events as server-sent events: onEvent({seq, type, node_id, at,
// data}) per event, after seq `after`. Resolves when the server ends the stream (the run is
// over) or signal aborts; reconnects after a dropped connection from the last seq seen.
export async function followEvents(runId, after, onEvent, signal) {
  let last = after || 0;
  for (let attempt = 0; attempt < 20 && !signal.aborted; attempt++) {
    let res;
    try {
      res = await fetch(`/api/runs/${encodeURIComponent(runId)}/events?after=${last}`, {
        headers: { ...authHeaders(), Accept: 'text/event-stream' },
        signal,
      });
    } catch {
      if (signal.aborted) return;
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    if (!res.ok || !res.body) return;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    let ended = false;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          ended = true;
          break;
        }
        buf += value;
        let cut;
        while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut).replace(/^\r?\n\r?\n/, '');
          const data = block
            .split(/\r?\n/)
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).replace(/^ /, ''))
            .join('\n');
          if (!data) continue; // a comment (keep-alive)
          try {
            const ev = JSON.parse(data);
            last = ev.seq;
            onEvent(ev);
          } catch {
            /* not ours: skip */
          }
        }
      }
    } catch {
      if (signal.aborted) return;
    }
    if (ended) return;
  }
}

// Values kept across a round trip through an OAuth page: sessionStorage, this tab only.
export function keep(name, value) {
  sessionStorage.setItem('toolgate.' + name, JSON.stringify(value));
}

export function kept(name) {
  try {
    return JSON.parse(sessionStorage.getItem('toolgate.' + name) || 'null');
  } catch {
    return null;
  }
}

export function forget(name) {
  sessionStorage.removeItem('toolgate.' + name);
}
