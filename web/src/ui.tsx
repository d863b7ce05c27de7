// Small shared pieces every page uses: async loading, errors, tables,
// times, JSON, modal dialogs.
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api';

export interface Async<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** useAsync runs f when deps change (and on reload) and tracks its result. */
export function useAsync<T>(f: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Async<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [n, setN] = useState(0);
  useEffect(() => {
    const ac = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    f(ac.signal).then(
      (data) => !ac.signal.aborted && setState({ data, loading: false }),
      (error) => !ac.signal.aborted && setState({ error, loading: false }),
    );
    return () => ac.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, n]);
  const reload = useCallback(() => setN((x) => x + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return `${e.code}: ${e.message}`;
  if (e instanceof Error) return e.message;
  return String(e);
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const problems: any[] | undefined = error instanceof ApiError ? error.body?.problems : undefined;
  return (
    <div class="error" role="alert">
      {errorText(error)}
      {problems && problems.length > 0 && (
        <ul>
          {problems.map((p, i) => (
            <li key={i}>
              {p.line ? `${p.line}:${p.column ?? 0} ` : ''}
              {p.path ? <code>{p.path}</code> : null} {p.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Loading() {
  return <div class="muted">Loading…</div>;
}

/** Show renders children with the data once loaded, else loading/error. */
export function Show<T>({ a, children }: { a: Async<T>; children: (d: T) => ComponentChildren }) {
  if (a.error) return <ErrorBox error={a.error} />;
  if (a.data === undefined) return <Loading />;
  return <>{children(a.data)}</>;
}

export function Page({ title, actions, children }: { title: ComponentChildren; actions?: ComponentChildren; children: ComponentChildren }) {
  return (
    <section class="page">
      <header class="page-head">
        <h1>{title}</h1>
        <div class="page-actions">{actions}</div>
      </header>
      {children}
    </section>
  );
}

export function fmtTime(ms: number | undefined | null): string {
  if (!ms) return '';
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function fmtAgo(ms: number): string {
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

export function JSONView({ value }: { value: unknown }) {
  return <pre class="json">{typeof value === 'string' ? value : JSON.stringify(value, null, 2)}</pre>;
}

export function Modal({ title, onClose, children }: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const f = (e: KeyboardEvent) => e.key === 'Escape' && onClose();
    window.addEventListener('keydown', f);
    return () => window.removeEventListener('keydown', f);
  }, [onClose]);
  return (
    <div class="modal-back" onClick={(e) => e.target === ref.current && onClose()} ref={ref}>
      <div class="modal" role="dialog" aria-label={title}>
        <header>
          <h2>{title}</h2>
          <button class="icon" aria-label="Close" onClick={onClose}>
            ×
          </button>
        </header>
        <div class="modal-body">{children}</div>
      </div>
    </div>
  );
}

/** useBusy wraps an action: busy while it runs, its error kept for display. */
export function useBusy(): [boolean, unknown, (f: () => Promise<unknown>) => Promise<void>] {
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<unknown>(null);
  const run = useCallback(async (f: () => Promise<unknown>) => {
    setBusy(true);
    setErr(null);
    try {
      await f();
    } catch (e) {
      setErr(e);
    } finally {
      setBusy(false);
    }
  }, []);
  return [busy, err, run];
}

/** decodeContent returns a Harvest entry's content as a JS value. */
export function decodeContent(e: { content?: any; contentEncoding?: string; contentType?: string }): any {
  let c = e.content;
  if (e.contentEncoding === 'base64') return c;
  if (typeof c === 'string') {
    try {
      c = JSON.parse(c);
    } catch {
      /* plain text */
    }
  }
  return c;
}
