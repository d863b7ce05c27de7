// A public dashboard page: /p/<operatorId>/<name>?<params>, served without
// login (no session, no live socket, no navigation). It reads
// GET /v1/public/dashboards/<operatorId>/<name>?<params>, whose panels
// carry the entries their where selected and signed URLs of the Files
// images those name, and draws them with the console's panels (grid.tsx)
// from that answer, refetched every `refresh`. Made for phones too (LINE's
// in-app browser): below ~720 px the panels stack in reading order. LIFF
// opens it as /p/…?liff.state=<the original path and query, encoded>:
// the params are then read from inside liff.state.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { DashContext, type DashContextValue, type Entry } from './data';
import { PanelGrid } from './grid';
import { parseDuration, type Panel } from './model';
import './dashboard.css';

/** PublicPanel is a panel of the public answer: the dashboard panel with its data. */
export interface PublicPanel extends Panel {
  entries: Entry[];
  files?: Record<string, string>;
}

/** PublicView is GET /v1/public/dashboards/{operatorId}/{name} (internal/dashboard/public.go). */
export interface PublicView {
  name: string;
  title: string;
  params?: Record<string, boolean>;
  public: boolean;
  refresh?: string;
  panels: PublicPanel[];
}

/**
 * publicQuery is a public page's parameters: its query string, and when
 * LINE's LIFF passed the original address in liff.state ("?user=U1" or
 * "/p/op/name?user=U1", URL-encoded), the parameters inside it (they win).
 */
export function publicQuery(search: string): URLSearchParams {
  const q = new URLSearchParams(search);
  let state = q.get('liff.state');
  if (state === null) return q;
  q.delete('liff.state');
  // Encoded twice by some redirects: decode until it reads as a path or query.
  for (let i = 0; i < 2 && /%[0-9a-f]{2}/i.test(state) && !/[?=&]/.test(state); i++) {
    try {
      state = decodeURIComponent(state);
    } catch {
      break;
    }
  }
  state = state.split('#')[0];
  const at = state.indexOf('?');
  const inner = at >= 0 ? state.slice(at + 1) : state.startsWith('/') ? '' : state;
  new URLSearchParams(inner).forEach((v, k) => k !== 'liff.state' && q.set(k, v));
  return q;
}

class PageError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

async function fetchPublic(op: string, name: string, q: URLSearchParams, signal: AbortSignal): Promise<PublicView> {
  const qs = q.toString();
  // No API headers: the page is public, and must not use a console session.
  const res = await fetch(`/v1/public/dashboards/${encodeURIComponent(op)}/${encodeURIComponent(name)}${qs ? '?' + qs : ''}`, {
    signal,
    headers: { Accept: 'application/json' },
    credentials: 'omit',
  });
  let body: any;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  if (!res.ok) throw new PageError(res.status, body?.code || 'HTTP' + res.status, body?.message || res.statusText);
  return body as PublicView;
}

const sentence = (s: string) => (s ? s[0].toUpperCase() + s.slice(1) : s);

function Notice({ error }: { error: unknown }) {
  const e = error instanceof PageError ? error : null;
  let title = 'This page could not be loaded';
  let text = error instanceof Error ? error.message : String(error);
  if (e?.status === 404) {
    title = 'Page not found';
    text = 'There is no such page, or it is no longer public.';
  } else if (e?.status === 400) {
    title = 'Something is missing';
    text = sentence(e.message);
  }
  return (
    <div class="public-notice" role="alert" data-testid="public-error" data-status={e?.status}>
      <h1>{title}</h1>
      <p>{text}</p>
    </div>
  );
}

export function PublicDashboard() {
  const [, , op = '', name = ''] = location.pathname.split('/').map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  const query = useMemo(() => publicQuery(location.search), []);
  const [st, setSt] = useState<{ data?: PublicView; error?: unknown; at: number }>({ at: 0 });
  const [n, setN] = useState(0);

  useEffect(() => {
    const ac = new AbortController();
    fetchPublic(op, name, query, ac.signal).then(
      (data) => {
        if (ac.signal.aborted) return;
        document.title = data.title || data.name;
        setSt({ data, at: Date.now() });
      },
      // A refetch that fails keeps what is shown, with the error above it.
      (error) => !ac.signal.aborted && setSt((s) => ({ ...s, error })),
    );
    return () => ac.abort();
  }, [n]);

  const refresh = parseDuration(st.data?.refresh);
  useEffect(() => {
    if (!refresh) return;
    const t = window.setInterval(() => setN((x) => x + 1), refresh);
    return () => clearInterval(t);
  }, [refresh]);

  const d = st.data;
  const params = useMemo(() => Object.fromEntries(query), [query]);
  const ctx = useMemo<DashContextValue>(
    () => ({
      hub: null,
      now: st.at,
      gen: n,
      range: { from: 'now', to: 'now' },
      params,
      fixed: { panels: (d?.panels || []).map((p) => ({ entries: p.entries || [], files: p.files || {} })), loading: false, error: null },
    }),
    [d, st.at],
  );

  let body;
  if (!d && st.error) body = <Notice error={st.error} />;
  else if (!d) body = <div class="public-loading muted">Loading…</div>;
  else
    body = (
      <DashContext.Provider value={ctx}>
        <section class="dash dash-public" data-testid="public-dashboard" data-name={d.name} data-loaded={st.at}>
          <header class="dash-head">
            <h1>{d.title}</h1>
          </header>
          {st.error ? <div class="error">{st.error instanceof Error ? st.error.message : String(st.error)}</div> : null}
          <PanelGrid panels={d.panels} />
        </section>
      </DashContext.Provider>
    );
  return <div class="public-page">{body}</div>;
}
