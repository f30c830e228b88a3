// The manager's REST API as the page uses it. The page decides nothing
// itself: it draws what the API says and sends what the user asked for;
// the service checks every input again.
//
// The token (every API request over TCP needs it) is kept for the browser
// tab in sessionStorage; it may also arrive once in the URL fragment
// (#token=..., as `clonekit console` prints it), which browsers never send
// to the server.

const TOKEN_KEY = 'clonekit-token';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function takeTokenFromUrl() {
  const m = window.location.hash.match(/token=([^&]+)/);
  if (!m) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  history.replaceState(null, '', window.location.pathname + window.location.search);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

function headers(extra = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

export async function request(method, path, body) {
  // Every POST and PUT carries a JSON body: the service refuses any other
  // type (so that no form post from another page gets through).
  const sendsBody = method === 'POST' || method === 'PUT';
  const init = { method, headers: headers(sendsBody ? { 'Content-Type': 'application/json' } : {}) };
  if (sendsBody) init.body = JSON.stringify(body === undefined ? {} : body);
  let res;
  try {
    res = await fetch(`/api/v1${path}`, init);
  } catch (e) {
    throw new ApiError(0, `the clonekit service does not answer (${e.message})`);
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, data.error || `${method} ${path}: HTTP ${res.status}`);
  return data;
}

export const api = {
  vms: () => request('GET', '/vms'),
  vm: (id) => request('GET', `/vms/${id}`),
  pools: () => request('GET', '/pools'),
  jobs: () => request('GET', '/jobs'),
  job: (id) => request('GET', `/jobs/${id}`),
  snapshots: (id) => request('GET', `/vms/${id}/snapshots`),
  cloneDefaults: (id, snapshot, host) => {
    const query = new URLSearchParams();
    if (snapshot) query.set('snapshot', snapshot);
    if (host) query.set('host', host);
    const q = query.toString();
    return request('GET', `/vms/${id}/clone-defaults${q ? `?${q}` : ''}`);
  },
  clone: (id, body) => request('POST', `/vms/${id}/clone`, body),
  cancelJob: (id) => request('POST', `/jobs/${id}/cancel`),
  start: (id) => request('POST', `/vms/${id}/start`),
  stop: (id, force = false) => request('POST', `/vms/${id}/stop`, { force }),
  update: (id, body) => request('PUT', `/vms/${id}`, body),
  remove: (id) => request('DELETE', `/vms/${id}`),
  flatten: (id) => request('POST', `/vms/${id}/flatten`),
  deleteSnapshot: (id, name) => request('DELETE', `/vms/${id}/snapshots/${encodeURIComponent(name)}`),
};

// Follows the change feed (server-sent events) for as long as the page
// lives. fetch() rather than EventSource, because EventSource cannot send
// the Authorization header. Reconnects after a second, resuming after the
// last event seen; onReconnect lets the caller reload what it may have missed.
export function followEvents(onEvent, onReconnect) {
  let last = null;
  let stopped = false;
  const controller = new AbortController();
  async function once() {
    const query = last === null ? '' : `?after=${last}`;
    const res = await fetch(`/api/v1/events${query}`, { headers: headers(), signal: controller.signal });
    if (!res.ok || !res.body) throw new Error(`events: HTTP ${res.status}`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = parseEvent(block);
        if (!event) continue;
        if (event.id !== null) last = event.id;
        onEvent(event.kind, event.data);
      }
    }
  }
  (async () => {
    while (!stopped) {
      try {
        await once();
      } catch (e) {
        if (stopped) return;
      }
      await new Promise((r) => setTimeout(r, 1000));
      if (!stopped) onReconnect();
    }
  })();
  return () => {
    stopped = true;
    controller.abort();
  };
}

function parseEvent(block) {
  let kind = 'message';
  let id = null;
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') kind = value;
    else if (field === 'id') id = Number(value);
    else if (field === 'data') data += value;
  }
  if (!data) return null;
  try {
    return { kind, id, data: JSON.parse(data) };
  } catch {
    return null;
  }
}
