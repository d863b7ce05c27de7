// The console's only way to the server: the same /v1 API and permissions
// as every other client. The session (API key + token) lives in
// sessionStorage, so closing the tab logs out.

export interface Session {
  apiKey: string;
  token: string;
  operatorId: string;
  userName?: string;
}

const KEY = 'nagare.session';

export function getSession(): Session | null {
  try {
    const s = sessionStorage.getItem(KEY);
    return s ? (JSON.parse(s) as Session) : null;
  } catch {
    return null;
  }
}

const listeners = new Set<() => void>();

/** onSessionChange calls f after login and logout. */
export function onSessionChange(f: () => void): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}

export function setSession(s: Session | null) {
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
  listeners.forEach((f) => f());
}

/** ApiError is a non-2xx answer: the server's {code, message}. */
export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public body?: any,
  ) {
    super(message);
  }
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined | null>;
  body?: unknown; // JSON-encoded unless a string/Blob (sent as is)
  contentType?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export function authHeaders(): Record<string, string> {
  const s = getSession();
  return s ? { 'X-Soracom-API-Key': s.apiKey, 'X-Soracom-Token': s.token } : {};
}

export function buildURL(path: string, query?: RequestOptions['query']): string {
  const u = new URL(path, location.origin);
  if (query) {
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, String(v));
    }
  }
  return u.pathname + u.search;
}

/** request sends one API call and returns the raw Response (2xx only). */
export async function request(method: string, path: string, opt: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...authHeaders(), ...(opt.headers || {}) };
  let body: BodyInit | undefined;
  if (opt.body !== undefined) {
    if (typeof opt.body === 'string' || opt.body instanceof Blob || opt.body instanceof ArrayBuffer) {
      body = opt.body as BodyInit;
      if (opt.contentType) headers['Content-Type'] = opt.contentType;
    } else {
      body = JSON.stringify(opt.body);
      headers['Content-Type'] = 'application/json';
    }
  }
  const res = await fetch(buildURL(path, opt.query), { method, headers, body, signal: opt.signal });
  if (!res.ok) {
    let code = 'HTTP' + res.status;
    let message = res.statusText;
    let parsed: any;
    try {
      parsed = await res.json();
      code = parsed.code || code;
      message = parsed.message || message;
    } catch {
      /* not JSON */
    }
    if (res.status === 401 && getSession() && !path.startsWith('/v1/auth')) setSession(null);
    throw new ApiError(res.status, code, message, parsed);
  }
  return res;
}

/** api sends one call and decodes its JSON answer (undefined for 204). */
export async function api<T = any>(method: string, path: string, opt: RequestOptions = {}): Promise<T> {
  const res = await request(method, path, opt);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  if (!text) return undefined as T;
  const ct = res.headers.get('Content-Type') || '';
  return (ct.includes('json') ? JSON.parse(text) : text) as T;
}

/** apiWithNext is api for paged lists: it also returns x-soracom-next-key. */
export async function apiWithNext<T = any>(path: string, opt: RequestOptions = {}): Promise<{ items: T; next: string | null }> {
  const res = await request('GET', path, opt);
  const items = (await res.json()) as T;
  return { items, next: res.headers.get('x-soracom-next-key') };
}

const blobCache = new Map<string, Promise<string>>();

/**
 * blobURL fetches an authenticated binary (a Files path, a snapshot) and
 * returns an object URL for <img src>. Cached per path unless fresh is set.
 */
export function blobURL(path: string, fresh = false): Promise<string> {
  if (!fresh) {
    const hit = blobCache.get(path);
    if (hit) return hit;
  }
  const p = request('GET', path).then(async (res) => URL.createObjectURL(await res.blob()));
  if (!fresh) {
    blobCache.set(path, p);
    p.catch(() => blobCache.delete(path));
  }
  return p;
}

/** filesPath is the API path of a Harvest Files path ("/a/b.jpg" or "private/a/b.jpg"). */
export function filesPath(p: string): string {
  let s = p.replace(/^\/+/, '');
  if (s.startsWith('v1/files/')) s = s.slice('v1/files/'.length);
  if (!s.startsWith('private/') && !s.startsWith('public/')) s = 'private/' + s;
  return '/v1/files/' + s.split('/').map(encodeURIComponent).join('/');
}

export interface LoginForm {
  email?: string;
  password?: string;
  authKeyId?: string;
  authKey?: string;
  operatorId?: string;
  userName?: string;
}

export async function login(form: LoginForm): Promise<Session> {
  const body: Record<string, string> = {};
  for (const [k, v] of Object.entries(form)) if (v) body[k] = v;
  const r = await api<any>('POST', '/v1/auth', { body });
  const s: Session = { apiKey: r.apiKey, token: r.token, operatorId: r.operatorId, userName: r.userName };
  setSession(s);
  return s;
}

export async function logout() {
  try {
    await api('POST', '/v1/auth/logout');
  } catch {
    /* the token may already be gone */
  }
  setSession(null);
}
