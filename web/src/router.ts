// Hash routing (#/dashboards/crowding): no server-side route table, and a
// reload or a shared link opens the same page.
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  path: string[]; // decoded segments: #/apps/x/runs → ['apps','x','runs']
  query: URLSearchParams;
}

export function parseHash(h = location.hash): Route {
  const s = h.replace(/^#\/?/, '');
  const [p, q] = s.split('?', 2);
  return {
    path: p ? p.split('/').filter(Boolean).map(decodeURIComponent) : [],
    query: new URLSearchParams(q || ''),
  };
}

export function useRoute(): Route {
  const [r, setR] = useState(parseHash());
  useEffect(() => {
    const f = () => setR(parseHash());
    window.addEventListener('hashchange', f);
    return () => window.removeEventListener('hashchange', f);
  }, []);
  return r;
}

/** href builds a link from segments: href('apps', id) → '#/apps/<id>'. */
export function href(...segments: (string | number)[]): string {
  return '#/' + segments.map((s) => encodeURIComponent(String(s))).join('/');
}

export function navigate(to: string) {
  location.hash = to.startsWith('#') ? to : '#' + to;
}
