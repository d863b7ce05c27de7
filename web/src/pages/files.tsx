// Harvest Files browser: #/files/<dir...> lists one directory (breadcrumbs,
// sub-directories, files with thumbnails for images), uploads files into
// it, and previews, downloads and deletes files.
import { useState } from 'preact/hooks';
import { ApiError, api, apiWithNext, blobURL, filesPath, request } from '../api';
import { href, navigate } from '../router';
import { ErrorBox, Modal, Page, fmtBytes, fmtTime, useAsync, useBusy } from '../ui';
import { ConfirmButton, inputValue } from '../resources/common';
import { BlobImg } from '../resources/blobimg';

interface FileEntry {
  filePath: string; // "/a/b.jpg"; directories end with "/"
  filename: string;
  isDirectory: boolean;
  contentType: string;
  contentLength: number;
  etag: string;
  lastModifiedTime: number;
}

/** Thumbnails download the whole file, so very large images get none. */
const MAX_THUMB_BYTES = 20 << 20;
/** Text previews are read whole into the page. */
const MAX_TEXT_BYTES = 512 << 10;

const isImage = (e: FileEntry) => !e.isDirectory && e.contentType.startsWith('image/');
/**
 * imagePath is the path pictures load from: blobURL caches per path, so the
 * etag (ignored by the server) makes a replaced file load anew.
 */
const imagePath = (e: FileEntry) => filesPath(e.filePath) + '?etag=' + encodeURIComponent(e.etag);
const isText = (e: FileEntry) => /^text\/|json|yaml|xml|csv/.test(e.contentType) && e.contentLength <= MAX_TEXT_BYTES;

/** dirPath is the listing URL of a directory (trailing slash; the root is /v1/files/private/). */
function dirPath(dir: string[]): string {
  return '/v1/files/private/' + dir.map((s) => encodeURIComponent(s) + '/').join('');
}

export function FilesPage({ path }: { path: string[]; query: URLSearchParams }) {
  return <Directory key={path.join('/')} dir={path} />;
}

function Directory({ dir }: { dir: string[] }) {
  const [pages, setPages] = useState(1);
  const [preview, setPreview] = useState<FileEntry | null>(null);
  const list = useAsync(
    async (signal) => {
      // Pages are re-read together after an upload or delete, so the
      // listing never shows a stale half.
      let items: FileEntry[] = [];
      let key: string | null = null;
      for (let i = 0; i < pages; i++) {
        const r: { items: FileEntry[]; next: string | null } = await apiWithNext<FileEntry[]>(dirPath(dir), {
          query: { limit: 200, last_evaluated_key: key },
          signal,
        });
        items = items.concat(r.items);
        key = r.next;
        if (!key) break;
      }
      return { items, next: key };
    },
    [dir.join('/'), pages],
  );
  const missing = list.error instanceof ApiError && list.error.status === 404 && dir.length > 0;
  const items = list.data?.items || [];
  const dirs = items.filter((e) => e.isDirectory);
  const files = items.filter((e) => !e.isDirectory);
  return (
    <Page title={<Breadcrumbs dir={dir} />}>
      <Uploader dir={dir} onDone={list.reload} />
      {missing ? (
        <p class="muted" role="status">
          /{dir.join('/')}/ holds no files. Directories exist while they hold files: upload one to create it.
        </p>
      ) : list.error ? (
        <ErrorBox error={list.error} />
      ) : !list.data ? (
        <p class="muted">Loading…</p>
      ) : items.length === 0 ? (
        <p class="muted">No files yet.</p>
      ) : (
        <table class="list files" aria-label="Files">
          <thead>
            <tr>
              <th class="thumb-col" />
              <th>Name</th>
              <th>Type</th>
              <th>Size</th>
              <th>Modified</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {dir.length > 0 && (
              <tr class="clickable" onClick={() => navigate(href('files', ...dir.slice(0, -1)))}>
                <td class="thumb-col">
                  <Icon dir />
                </td>
                <td colSpan={5}>
                  <a href={href('files', ...dir.slice(0, -1))}>..</a>
                </td>
              </tr>
            )}
            {dirs.map((e) => (
              <tr key={e.filePath} class="clickable" onClick={() => navigate(href('files', ...dir, e.filename))}>
                <td class="thumb-col">
                  <Icon dir />
                </td>
                <td>
                  <a href={href('files', ...dir, e.filename)} onClick={(ev) => ev.stopPropagation()}>
                    {e.filename}/
                  </a>
                </td>
                <td class="muted small">directory</td>
                <td />
                <td />
                <td class="actions" onClick={(ev) => ev.stopPropagation()}>
                  <DeleteDir entry={e} onDone={list.reload} />
                </td>
              </tr>
            ))}
            {files.map((e) => (
              <tr key={e.filePath} class="clickable" onClick={() => setPreview(e)} data-file={e.filename}>
                <td class="thumb-col">
                  {isImage(e) && e.contentLength <= MAX_THUMB_BYTES ? <BlobImg path={imagePath(e)} alt={e.filename} class="thumb" lazy /> : <Icon />}
                </td>
                <td>
                  <button
                    class="link"
                    onClick={(ev) => {
                      ev.stopPropagation();
                      setPreview(e);
                    }}
                  >
                    {e.filename}
                  </button>
                </td>
                <td class="muted small">{e.contentType}</td>
                <td class="nowrap">{fmtBytes(e.contentLength)}</td>
                <td class="small nowrap">{fmtTime(e.lastModifiedTime)}</td>
                <td class="actions" onClick={(ev) => ev.stopPropagation()}>
                  <div class="row">
                    <DownloadButton entry={e} />
                    <DeleteFile entry={e} onDone={list.reload} />
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {list.data?.next && (
        <div class="row pager">
          <button onClick={() => setPages(pages + 1)}>More…</button>
        </div>
      )}
      {preview && (
        <Preview
          entry={preview}
          onClose={() => setPreview(null)}
          onDeleted={() => {
            setPreview(null);
            list.reload();
          }}
        />
      )}
    </Page>
  );
}

/** Icon is a folder or a page: the console ships no icon font, and emoji glyphs are missing on many systems. */
function Icon({ dir = false }: { dir?: boolean }) {
  return (
    <svg class={'file-icon' + (dir ? ' dir' : '')} viewBox="0 0 24 24" aria-hidden="true">
      {dir ? (
        <path fill="currentColor" d="M3 6a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z" />
      ) : (
        <path fill="none" stroke="currentColor" stroke-width="1.6" d="M6 3h8l4 4v14H6zM14 3v4h4" />
      )}
    </svg>
  );
}

function Breadcrumbs({ dir }: { dir: string[] }) {
  return (
    <span class="crumbs">
      <a href={href('files')} class="crumb">
        Files
      </a>
      {dir.map((seg, i) => (
        <span key={i}>
          {' / '}
          {i === dir.length - 1 ? seg : <a href={href('files', ...dir.slice(0, i + 1))} class="crumb">{seg}</a>}
        </span>
      ))}
    </span>
  );
}

interface UploadState {
  name: string;
  status: 'waiting' | 'uploading' | 'done' | 'failed';
  error?: unknown;
}

/**
 * Uploader PUTs the chosen (or dropped) files one by one into the directory
 * — or a sub-folder of it — each with its own Content-Type, which the
 * store keeps and later serves.
 */
function Uploader({ dir, onDone }: { dir: string[]; onDone: () => void }) {
  const [sub, setSub] = useState('');
  const [states, setStates] = useState<UploadState[]>([]);
  const [over, setOver] = useState(false);
  const busy = states.some((s) => s.status === 'uploading' || s.status === 'waiting');
  const upload = async (list: FileList | File[]) => {
    const files = Array.from(list);
    if (files.length === 0) return;
    const base = [...dir, ...sub.split('/').map((s) => s.trim()).filter(Boolean)];
    setStates(files.map((f) => ({ name: f.name, status: 'waiting' })));
    for (let i = 0; i < files.length; i++) {
      const f = files[i];
      const set = (s: Partial<UploadState>) => setStates((cur) => cur.map((x, j) => (j === i ? { ...x, ...s } : x)));
      set({ status: 'uploading' });
      try {
        await request('PUT', filesPath([...base, f.name].join('/')), { body: f, contentType: f.type || 'application/octet-stream' });
        set({ status: 'done' });
      } catch (e) {
        set({ status: 'failed', error: e });
      }
    }
    onDone();
  };
  return (
    <div
      class={'card uploader' + (over ? ' over' : '')}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        if (e.dataTransfer?.files) upload(e.dataTransfer.files);
      }}
    >
      <div class="row">
        <label class="inline">
          Upload into /{dir.map((s) => s + '/').join('')}
          <input class="sub-folder" aria-label="Sub-folder" placeholder="sub-folder (optional)" value={sub} onInput={(e) => setSub(inputValue(e))} />
        </label>
        <label class="inline file-pick">
          <input
            type="file"
            multiple
            aria-label="Files to upload"
            disabled={busy}
            onChange={(e) => {
              const input = e.target as HTMLInputElement;
              if (input.files) upload(input.files).then(() => (input.value = ''));
            }}
          />
        </label>
        <span class="muted small">or drop files here</span>
      </div>
      {states.length > 0 && (
        <ul class="upload-list">
          {states.map((s, i) => (
            <li key={i} class={s.status}>
              {s.name}: {s.status}
              {s.error ? <ErrorBox error={s.error} /> : null}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** download saves a file: fetched with the API headers, handed over as an object URL. */
async function download(e: FileEntry) {
  const url = await blobURL(filesPath(e.filePath), true);
  const a = document.createElement('a');
  a.href = url;
  a.download = e.filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function DownloadButton({ entry }: { entry: FileEntry }) {
  const [busy, err, run] = useBusy();
  return (
    <>
      <button disabled={busy} onClick={() => run(() => download(entry))}>
        Download
      </button>
      <ErrorBox error={err} />
    </>
  );
}

function DeleteFile({ entry, onDone }: { entry: FileEntry; onDone: () => void }) {
  return (
    <ConfirmButton
      label="Delete"
      title={`Delete ${entry.filePath}?`}
      onConfirm={async () => {
        await api('DELETE', filesPath(entry.filePath));
        onDone();
      }}
    >
      <p>The file is removed from the store. This cannot be undone.</p>
    </ConfirmButton>
  );
}

function DeleteDir({ entry, onDone }: { entry: FileEntry; onDone: () => void }) {
  return (
    <ConfirmButton
      label="Delete"
      title={`Delete directory ${entry.filePath}?`}
      onConfirm={async () => {
        try {
          await api('DELETE', filesPath(entry.filePath.replace(/\/$/, '')) + '/');
        } catch (e) {
          // 404: its last file went meanwhile, so the directory is gone.
          if (!(e instanceof ApiError && e.status === 404)) throw e;
        }
        onDone();
      }}
      explain={(e) =>
        e instanceof ApiError && e.status === 400 ? 'Directories exist only while they hold files: delete the files in it (and its sub-directories) first.' : null
      }
    >
      <p>Only an empty directory can be deleted.</p>
    </ConfirmButton>
  );
}

function Preview({ entry, onClose, onDeleted }: { entry: FileEntry; onClose: () => void; onDeleted: () => void }) {
  const text = useAsync(
    async () => (isText(entry) ? (await request('GET', filesPath(entry.filePath))).text() : null),
    [entry.filePath, entry.etag],
  );
  return (
    <Modal title={entry.filePath} onClose={onClose}>
      <div class="preview-body">
        {isImage(entry) ? (
          <BlobImg path={imagePath(entry)} alt={entry.filename} class="preview-img" />
        ) : isText(entry) ? (
          text.error ? <ErrorBox error={text.error} /> : <pre class="json">{text.data ?? 'Loading…'}</pre>
        ) : (
          <p class="muted">No preview for {entry.contentType || 'this type'}.</p>
        )}
      </div>
      <p class="muted small">
        {entry.contentType} · {fmtBytes(entry.contentLength)} · modified {fmtTime(entry.lastModifiedTime)}
      </p>
      <div class="row modal-actions">
        <DownloadButton entry={entry} />
        <DeleteFile entry={entry} onDone={onDeleted} />
      </div>
    </Modal>
  );
}
