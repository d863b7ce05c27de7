// A dashboard as a page: the title bar (time range, auto refresh, refresh,
// edit, kiosk) and the panels on the 24-column grid. The chosen range and
// refresh are kept in the URL (#/dashboards/x?from=now-1h&refresh=30s), so
// a link or a kiosk screen opens the same view. A dashboard's params come
// from the same query (#/dashboards/x?user=U1) and stay in it; a public
// dashboard offers its public link (/p/<operatorId>/<name>).
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, getSession } from '../api';
import { href } from '../router';
import { ErrorBox, Loading, Page, useAsync } from '../ui';
import { DashContext, DataHub, type LiveState } from './data';
import { PanelGrid } from './grid';
import { isRelative, missingParams, needsText, pageParams, parseDuration, parseTime, presets, rangeLabel, resolveRange, type Dashboard, type TimeRange } from './model';

/** publicLink is the address of a public dashboard's page, with the params given. */
export function publicLink(d: Dashboard, params: Record<string, string>): string | null {
  const op = getSession()?.operatorId;
  if (!d.public || !op) return null;
  const q = new URLSearchParams(params).toString();
  return `${location.origin}/p/${encodeURIComponent(op)}/${encodeURIComponent(d.name)}${q ? '?' + q : ''}`;
}

export function DashboardView({ name, query }: { name: string; query: URLSearchParams }) {
  const a = useAsync((signal) => api<Dashboard>('GET', `/v1/dashboards/${encodeURIComponent(name)}`, { signal }), [name]);
  if (a.error)
    return (
      <Page title={name} actions={<a href={href('dashboards')}>All dashboards</a>}>
        <ErrorBox error={a.error} />
      </Page>
    );
  if (!a.data) return <Loading />;
  return <Board key={`${name}@${a.data.version}`} d={a.data} query={query} />;
}

const refreshChoices = ['', '10s', '30s', '1m', '5m'];

function Board({ d, query }: { d: Dashboard; query: URLSearchParams }) {
  const kiosk = query.get('kiosk') === '1';
  const [range, setRange] = useState<TimeRange>(() => {
    const r = { from: query.get('from') || d.time.from, to: query.get('to') || d.time.to };
    return resolveRange(r, Date.now()) ? r : d.time;
  });
  const [refresh, setRefresh] = useState<string>(() => query.get('refresh') ?? d.refresh ?? '');
  const [now, setNow] = useState(Date.now());
  const [gen, setGen] = useState(0);
  const paramKey = new URLSearchParams(pageParams(d, query)).toString();
  const params = useMemo(() => pageParams(d, query), [paramKey]);
  const missing = missingParams(d, params);
  const hub = useMemo(() => new DataHub(), []);
  useEffect(() => () => hub.dispose(), [hub]);

  const reload = useCallback(() => {
    setNow(Date.now());
    setGen((g) => g + 1);
    hub.reloadAll();
  }, [hub]);

  useEffect(() => {
    const ms = parseDuration(refresh);
    if (!ms) return;
    const t = window.setInterval(reload, ms);
    return () => clearInterval(t);
  }, [refresh, reload]);

  // Between refreshes a relative range still slides: pushed entries keep
  // arriving and old ones leave the window.
  useEffect(() => {
    if (!isRelative(range)) return;
    const r = resolveRange(range, Date.now());
    const step = r ? Math.min(10_000, Math.max(1000, (r.to - r.from) / 300)) : 10_000;
    const t = window.setInterval(() => setNow(Date.now()), step);
    return () => clearInterval(t);
  }, [range.from, range.to]);

  const chooseRange = (r: TimeRange) => {
    setRange(r);
    setNow(Date.now());
  };

  const link = (extra: Record<string, string>) => {
    const q = new URLSearchParams(params);
    if (range.from !== d.time.from || range.to !== d.time.to) {
      q.set('from', range.from);
      q.set('to', range.to);
    }
    if (refresh !== (d.refresh ?? '')) q.set('refresh', refresh);
    for (const [k, v] of Object.entries(extra)) q.set(k, v);
    const s = q.toString();
    return href('dashboards', d.name) + (s ? '?' + s : '');
  };
  // replaceState, not a navigation: no history entry per click, no re-route.
  useEffect(() => {
    const h = link(kiosk ? { kiosk: '1' } : {});
    if (location.hash !== h) history.replaceState(history.state, '', h);
  }, [range.from, range.to, refresh, kiosk, paramKey]);

  const [live, setLive] = useState(hub.liveState());
  useEffect(() => hub.onLiveState(() => setLive(hub.liveState())), [hub]);

  const ctx = useMemo(() => ({ hub, now, gen, range, params }), [hub, now, gen, range, params]);
  const pub = !kiosk && publicLink(d, params);
  const refreshOpts = refreshChoices.includes(refresh) ? refreshChoices : [...refreshChoices, refresh];
  return (
    <DashContext.Provider value={ctx}>
      <section class={'dash' + (kiosk ? ' dash-kiosk' : '')} data-live={live.state}>
        <header class="dash-head">
          <h1>
            {!kiosk && (
              <>
                <a href={href('dashboards')}>Dashboards</a>
                <span class="muted"> / </span>
              </>
            )}
            {d.title}
          </h1>
          <LiveDot state={live.state} error={live.error} />
          <TimePicker range={range} onChange={chooseRange} />
          <select aria-label="Auto refresh" title="Auto refresh" value={refresh} onChange={(e) => setRefresh((e.target as HTMLSelectElement).value)}>
            {refreshOpts.map((r) => (
              <option key={r} value={r}>
                {r ? `↻ ${r}` : '↻ off'}
              </option>
            ))}
          </select>
          <button onClick={reload} aria-label="Refresh" title="Refresh now">
            ↻
          </button>
          {!kiosk && (
            <a class="button" href={href('dashboards', d.name, 'edit')}>
              Edit
            </a>
          )}
          {pub && (
            <a class="button" href={pub} target="_blank" rel="noopener" data-testid="public-link" title={'The page without login: ' + pub}>
              Public link
            </a>
          )}
          <a class="button" href={link(kiosk ? {} : { kiosk: '1' })} title={kiosk ? 'Show the navigation again' : 'Full screen, without the navigation'}>
            {kiosk ? 'Exit kiosk' : 'Kiosk'}
          </a>
        </header>
        {missing.length ? (
          <div class="dash-needs" role="alert" data-testid="needs-params">
            {needsText(missing)}
          </div>
        ) : (
          <PanelGrid panels={d.panels} />
        )}
      </section>
    </DashContext.Provider>
  );
}

function LiveDot({ state, error }: { state: LiveState; error: string }) {
  const text = { idle: '', connecting: 'connecting…', live: 'live', error: 'live updates off' }[state];
  return (
    <span class={'dash-live ' + state} title={error || 'new data is pushed as it arrives'}>
      {text}
    </span>
  );
}

const p2 = (n: number) => String(n).padStart(2, '0');

/** showEnd is a range end as typed: relative as is, instants in local time. */
function showEnd(s: string): string {
  if (!/^\d{1,15}$/.test(s)) return s;
  const d = new Date(Number(s));
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
}

/** readEnd accepts now/now-6h, UNIX ms, RFC 3339 or a local "YYYY-MM-DD HH:MM[:SS]". */
function readEnd(s: string): string | null {
  s = s.trim();
  if (parseTime(s, Date.now()) !== null) return s;
  const m = /^(\d{4})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d)(?::(\d\d))?)?$/.exec(s);
  if (!m) return null;
  const t = new Date(+m[1], +m[2] - 1, +m[3], +(m[4] || 0), +(m[5] || 0), +(m[6] || 0)).getTime();
  return Number.isNaN(t) ? null : String(t);
}

function TimePicker({ range, onChange }: { range: TimeRange; onChange: (r: TimeRange) => void }) {
  const [open, setOpen] = useState(false);
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [err, setErr] = useState('');
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    setFrom(showEnd(range.from));
    setTo(showEnd(range.to));
    setErr('');
    const close = (e: Event) => ref.current && !ref.current.contains(e.target as Node) && setOpen(false);
    const esc = (e: KeyboardEvent) => e.key === 'Escape' && setOpen(false);
    document.addEventListener('mousedown', close);
    document.addEventListener('keydown', esc);
    return () => {
      document.removeEventListener('mousedown', close);
      document.removeEventListener('keydown', esc);
    };
  }, [open]);
  const pick = (r: TimeRange) => {
    onChange(r);
    setOpen(false);
  };
  const apply = (e: Event) => {
    e.preventDefault();
    const f = readEnd(from);
    const t = readEnd(to);
    if (f === null || t === null) return setErr(`${f === null ? 'From' : 'To'}: use now-6h, 2026-01-02 15:04 or RFC 3339`);
    if (!resolveRange({ from: f, to: t }, Date.now())) return setErr('From must be before to');
    pick({ from: f, to: t });
  };
  return (
    <div class="dash-picker" ref={ref}>
      <button onClick={() => setOpen(!open)} aria-haspopup="true" aria-expanded={open} aria-label="Time range" title="Time range">
        <svg class="dash-clock" viewBox="0 0 16 16" aria-hidden="true">
          <circle cx="8" cy="8" r="6.5" fill="none" stroke="currentColor" stroke-width="1.4" />
          <path d="M8 4.5V8l2.5 1.5" fill="none" stroke="currentColor" stroke-width="1.4" stroke-linecap="round" />
        </svg>
        {rangeLabel(range)}
      </button>
      {open && (
        <div class="dash-picker-pop" role="dialog" aria-label="Choose a time range">
          <form onSubmit={apply}>
            <h3>Absolute time range</h3>
            <label>
              From
              <input value={from} onInput={(e) => setFrom((e.target as HTMLInputElement).value)} placeholder="now-6h" />
            </label>
            <label>
              To
              <input value={to} onInput={(e) => setTo((e.target as HTMLInputElement).value)} placeholder="now" />
            </label>
            {err && <div class="error">{err}</div>}
            <button class="primary" type="submit">
              Apply
            </button>
          </form>
          <ul>
            {presets.map((p) => (
              <li key={p.from}>
                <button class={'link' + (range.from === p.from && range.to === 'now' ? ' active' : '')} onClick={() => pick({ from: p.from, to: 'now' })}>
                  {p.label}
                </button>
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}
