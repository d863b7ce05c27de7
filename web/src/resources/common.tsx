// Pieces the resource pages (devices, groups, files, cameras, users,
// credentials) share: secrets shown once, confirmed deletes, tag editors,
// Harvest entry previews, the live-status dot and timers that pause while
// the tab is hidden.
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { live, type LiveStatus } from '../live';
import { ErrorBox, Modal, decodeContent, fmtTime, useBusy } from '../ui';
import './resources.css';

/** fmtSec formats the UNIX-seconds times of users, auth keys and credentials. */
export function fmtSec(s: number | undefined | null): string {
  return s ? fmtTime(s * 1000) : '';
}

export function CopyButton({ text }: { text: string }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setDone(true);
      setTimeout(() => setDone(false), 1500);
    } catch {
      /* clipboard refused (http:// origin): the text is selectable anyway */
    }
  };
  return (
    <button type="button" onClick={copy}>
      {done ? 'Copied' : 'Copy'}
    </button>
  );
}

/**
 * SecretOnce shows a secret the API returns a single time (device secret,
 * auth key). The warning is explicit because closing loses it for good.
 */
export function SecretOnce({ label, value, children }: { label: string; value: string; children?: ComponentChildren }) {
  return (
    <div class="secret-once" role="status">
      <div class="secret-warn">
        <strong>{label} — shown only once.</strong> Copy it now: nagare stores only a hash and cannot show it again.
      </div>
      <div class="row">
        <code class="secret-value" data-testid="secret-value">
          {value}
        </code>
        <CopyButton text={value} />
      </div>
      {children}
    </div>
  );
}

/**
 * ConfirmButton asks in a dialog before a destructive call and keeps the
 * dialog open with the API's error when it fails; explain adds what the
 * error means for this resource (e.g. a group that still has members).
 */
export function ConfirmButton({
  label,
  title,
  confirmLabel = 'Delete',
  onConfirm,
  explain,
  children,
}: {
  label: string;
  title: string;
  confirmLabel?: string;
  onConfirm: () => Promise<unknown>;
  explain?: (e: unknown) => ComponentChildren;
  children?: ComponentChildren;
}) {
  const [open, setOpen] = useState(false);
  const [busy, err, run] = useBusy();
  const close = () => setOpen(false);
  return (
    <>
      <button type="button" class="danger" onClick={() => setOpen(true)}>
        {label}
      </button>
      {open && (
        <Modal title={title} onClose={close}>
          {children}
          <ErrorBox error={err} />
          {err && explain ? <p class="muted">{explain(err)}</p> : null}
          <div class="row modal-actions">
            <button type="button" onClick={close}>
              Cancel
            </button>
            <button
              type="button"
              class="primary danger-fill"
              disabled={busy}
              onClick={() =>
                run(async () => {
                  await onConfirm();
                  setOpen(false);
                })
              }
            >
              {busy ? 'Working…' : confirmLabel}
            </button>
          </div>
        </Modal>
      )}
    </>
  );
}

/** TagsEditor lists name→value tags with remove buttons and an add/replace form. */
export function TagsEditor({
  tags,
  onPut,
  onDelete,
}: {
  tags: Record<string, string>;
  onPut: (name: string, value: string) => Promise<unknown>;
  onDelete: (name: string) => Promise<unknown>;
}) {
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const [busy, err, run] = useBusy();
  const names = Object.keys(tags || {}).sort();
  const add = (e: Event) => {
    e.preventDefault();
    if (!name.trim()) return;
    run(async () => {
      await onPut(name.trim(), value);
      setName('');
      setValue('');
    });
  };
  return (
    <div class="tags-editor">
      {names.length === 0 ? (
        <p class="muted">No tags.</p>
      ) : (
        <table class="list compact">
          <tbody>
            {names.map((n) => (
              <tr key={n}>
                <th>{n}</th>
                <td class="grow">{tags[n]}</td>
                <td class="actions">
                  <button type="button" class="link" aria-label={`Remove tag ${n}`} disabled={busy} onClick={() => run(() => onDelete(n))}>
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form class="row tag-form" onSubmit={add} aria-label="Add tag">
        <input placeholder="tag name" aria-label="Tag name" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        <input placeholder="value" aria-label="Tag value" class="grow" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
        <button type="submit" disabled={busy || !name.trim()}>
          {name && tags && name.trim() in tags ? 'Replace' : 'Add tag'}
        </button>
      </form>
      <ErrorBox error={err} />
    </div>
  );
}

/** entryPreview is one line of a Harvest entry's content for tables. */
export function entryPreview(e: { content?: any; contentEncoding?: string; contentType?: string }, max = 120): string {
  if (e.contentEncoding === 'base64') {
    const n = typeof e.content === 'string' ? Math.floor((e.content.length * 3) / 4) : 0;
    return `(${e.contentType || 'binary'}, ${n} bytes)`;
  }
  const c = decodeContent(e);
  const s = typeof c === 'string' ? c : JSON.stringify(c);
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

/** useLiveStatus follows the shared WebSocket's state. */
export function useLiveStatus(): LiveStatus {
  const [s, setS] = useState<LiveStatus>(live.status);
  useEffect(() => live.onStatus(setS), []);
  return s;
}

export function LiveDot({ status }: { status: LiveStatus }) {
  const text = status === 'live' ? 'live' : status === 'connecting' ? 'connecting…' : status === 'offline' ? 'offline, reconnecting' : 'not connected';
  return (
    <span class={'live-dot ' + status} data-live-status={status} title="updates pushed over /v1/live">
      ● {text}
    </span>
  );
}

/**
 * useVisibleInterval calls f every ms while enabled and the tab is
 * visible; hidden tabs should not keep cameras or the server busy.
 */
export function useVisibleInterval(f: () => void, ms: number, enabled = true) {
  const ref = useRef(f);
  ref.current = f;
  useEffect(() => {
    if (!enabled) return;
    const t = window.setInterval(() => {
      if (document.visibilityState === 'visible') ref.current();
    }, ms);
    return () => clearInterval(t);
  }, [ms, enabled]);
}

/** inputValue reads an input/select/textarea's value in an event handler. */
export function inputValue(e: Event): string {
  return (e.target as HTMLInputElement).value;
}

/** Card is a titled panel section of a detail page. */
export function Card({ title, actions, children, class: cls }: { title: ComponentChildren; actions?: ComponentChildren; children: ComponentChildren; class?: string }) {
  return (
    <section class={'card res-card' + (cls ? ' ' + cls : '')}>
      <header class="res-card-head">
        <h2>{title}</h2>
        {actions ? <div class="row">{actions}</div> : null}
      </header>
      {children}
    </section>
  );
}

/** DL is a two-column list of label → value. */
export function DL({ items }: { items: [ComponentChildren, ComponentChildren][] }) {
  return (
    <dl class="res-dl">
      {items.map(([k, v], i) => (
        <div key={i}>
          <dt>{k}</dt>
          <dd>{v === '' || v === undefined || v === null ? <span class="muted">—</span> : v}</dd>
        </div>
      ))}
    </dl>
  );
}

/** FormActions is the Cancel / submit footer of a form in a dialog. */
export function FormActions({ onCancel, disabled, label }: { onCancel: () => void; disabled?: boolean; label: string }) {
  return (
    <div class="row modal-actions">
      <button type="button" onClick={() => onCancel()}>
        Cancel
      </button>
      <button class="primary" type="submit" disabled={disabled}>
        {label}
      </button>
    </div>
  );
}
