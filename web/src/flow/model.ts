// The Flux API's shapes as the console reads them (internal/flow/http.go
// AppView, runs.go Run/Step) and the paths of its operations.

export interface SourceView {
  kind: string;
  [field: string]: any;
}

export interface OutputView {
  channel: string;
  transform?: any;
  delay?: string;
  forEach?: boolean;
}

export interface ActionView {
  name: string;
  kind: string;
  description?: string;
  condition?: string;
  config: Record<string, any>;
  timeout: string;
  retries: number;
  output?: OutputView;
  // Where a failed action's error goes (after its retries), instead of
  // failing the run.
  onError?: OutputView;
}

export interface ChannelView {
  name: string;
  description?: string;
  sources: SourceView[];
  actions: ActionView[];
  webhookUrl?: string;
}

export interface AppView {
  appId: string;
  name: string;
  description: string;
  enabled: boolean;
  version: number;
  createdTime: number;
  updatedTime: number;
  channels: ChannelView[];
}

export type RunStatus = 'running' | 'succeeded' | 'failed';

export interface Run {
  runId: string;
  app: string;
  channel: string;
  source: string;
  status: RunStatus;
  error?: string;
  steps: number;
  pending: number;
  startedAt: number;
  updatedAt: number;
  finishedAt?: number;
}

export interface Step {
  kind: 'event' | 'action';
  channel: string;
  action?: string;
  hop: number;
  attempt: number;
  status: string;
  condition?: string;
  input?: unknown;
  config?: unknown;
  output?: unknown;
  emitted?: number;
  delayMs?: number;
  error?: string;
  note?: string;
  startedAt: number;
  durationUs: number;
}

export interface RunDetail extends Run {
  trace: Step[];
}

export const validatePath = '/v1/flux/validate';
export const appsPath = '/v1/flux/apps';

export function appPath(app: string, ...rest: string[]): string {
  return [appsPath, app, ...rest].map((s, i) => (i === 0 ? s : encodeURIComponent(s))).join('/');
}

/** fmtDuration shows a span of microseconds the way a trace reads best. */
export function fmtDuration(us: number): string {
  if (us < 1000) return `${us} µs`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(1)} ms`;
  if (us < 60_000_000) return `${(us / 1_000_000).toFixed(2)} s`;
  return `${Math.floor(us / 60_000_000)} min ${Math.round((us % 60_000_000) / 1_000_000)} s`;
}

/** runDuration is a finished run's length, or how long it has been going. */
export function runDuration(r: Run): string {
  const end = r.finishedAt ?? (r.status === 'running' ? Date.now() : r.updatedAt);
  return fmtDuration(Math.max(0, end - r.startedAt) * 1000) + (r.finishedAt ? '' : ' …');
}
