// Authenticated images: an <img> cannot send the API headers, so pictures
// (Files thumbnails and previews, camera snapshots) are fetched with
// blobURL from api.ts and shown through object URLs.
import { useEffect, useRef, useState } from 'preact/hooks';
import { blobURL } from '../api';
import { errorText } from '../ui';

/**
 * BlobImg shows the image at an API path (cached per path by blobURL).
 * With lazy it waits until the image scrolls into view, so a directory of
 * photos does not download every one at once.
 */
export function BlobImg({ path, alt, class: cls, lazy = false }: { path: string; alt: string; class?: string; lazy?: boolean }) {
  const [url, setURL] = useState<string>();
  const [err, setErr] = useState<string>();
  const [seen, setSeen] = useState(!lazy);
  const box = useRef<HTMLSpanElement>(null);
  useEffect(() => {
    if (seen || !box.current) return;
    const io = new IntersectionObserver((es) => {
      if (es.some((e) => e.isIntersecting)) {
        setSeen(true);
        io.disconnect();
      }
    });
    io.observe(box.current);
    return () => io.disconnect();
  }, [seen]);
  useEffect(() => {
    if (!seen) return;
    let alive = true;
    setErr(undefined);
    blobURL(path).then(
      (u) => alive && setURL(u),
      (e) => alive && setErr(errorText(e)),
    );
    return () => {
      alive = false;
    };
  }, [path, seen]);
  return (
    <span class={'blob-img ' + (cls || '')} ref={box}>
      {err ? <span class="bad-text small" title={err}>⚠ {err}</span> : url ? <img src={url} alt={alt} /> : <span class="muted small">…</span>}
    </span>
  );
}

/**
 * useFreshImage loads a picture that changes on every request (a camera
 * snapshot): each load fetches anew and the previous object URL is revoked
 * once the new one is shown.
 */
export function useFreshImage(path: string): { url?: string; error?: string; loading: boolean; at?: number; reload: () => void } {
  const [state, setState] = useState<{ url?: string; error?: string; loading: boolean; at?: number }>({ loading: true });
  const [n, setN] = useState(0);
  const current = useRef<string>();
  const inFlight = useRef(false);
  useEffect(() => {
    let alive = true;
    inFlight.current = true;
    setState((s) => ({ ...s, loading: true }));
    blobURL(path, true).then(
      (u) => {
        inFlight.current = false;
        if (!alive) {
          URL.revokeObjectURL(u);
          return;
        }
        const old = current.current;
        current.current = u;
        setState({ url: u, loading: false, at: Date.now() });
        if (old) setTimeout(() => URL.revokeObjectURL(old), 1000);
      },
      (e) => {
        inFlight.current = false;
        if (alive) setState((s) => ({ ...s, error: errorText(e), loading: false }));
      },
    );
    return () => {
      alive = false;
    };
  }, [path, n]);
  useEffect(
    () => () => {
      if (current.current) URL.revokeObjectURL(current.current);
    },
    [],
  );
  // A reload while a grab is still running would only queue another grab.
  const reload = () => {
    if (!inFlight.current) setN((x) => x + 1);
  };
  return { ...state, reload };
}
