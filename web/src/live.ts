// Live updates: one WebSocket to /v1/live per tab, shared by every panel.
// Protocol (docs/console.md "Live updates"): the first message
// authenticates with the session's API key and token; then the client
// subscribes to topics; the server pushes messages for them. On a drop the
// client reconnects with back-off and subscribes again.

import { getSession } from './api';

export interface DataEntry {
  resourceType: string;
  resourceId: string;
  time: number;
  contentType?: string;
  content?: any;
  contentEncoding?: string;
}

type Handler = (msg: any) => void;

interface Sub {
  id: string;
  topic: Record<string, string>;
  handler: Handler;
}

export type LiveStatus = 'idle' | 'connecting' | 'live' | 'offline';

class LiveClient {
  private ws: WebSocket | null = null;
  private subs = new Map<string, Sub>();
  private seq = 0;
  private ready = false;
  private backoff = 500;
  private timer: number | undefined;
  status: LiveStatus = 'idle';
  private statusListeners = new Set<(s: LiveStatus) => void>();

  onStatus(f: (s: LiveStatus) => void): () => void {
    this.statusListeners.add(f);
    f(this.status);
    return () => this.statusListeners.delete(f);
  }

  private setStatus(s: LiveStatus) {
    this.status = s;
    this.statusListeners.forEach((f) => f(s));
  }

  /** subscribe starts a subscription; the returned function ends it. */
  subscribe(topic: Record<string, string>, handler: Handler): () => void {
    const id = String(++this.seq);
    const sub = { id, topic, handler };
    this.subs.set(id, sub);
    if (this.ready) this.send({ type: 'subscribe', id, ...topic });
    else this.connect();
    return () => {
      this.subs.delete(id);
      if (this.ready) this.send({ type: 'unsubscribe', id });
      if (this.subs.size === 0) this.close();
    };
  }

  /**
   * subscribeData calls f with each new Harvest Data entry of a resource.
   * onSubscribed runs each time the server has confirmed the subscription
   * (again after a reconnect): pushes start only then, so a page reads
   * what it shows at that moment to miss nothing.
   */
  subscribeData(resourceType: string, resourceId: string, f: (e: DataEntry) => void, onSubscribed?: () => void): () => void {
    return this.subscribe({ topic: 'data', resourceType, resourceId }, (m) => {
      if (m.type === 'subscribed') onSubscribed?.();
      else if (m.entry) f(m.entry as DataEntry);
    });
  }

  private send(m: unknown) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  }

  private connect() {
    if (this.ws || this.timer !== undefined) return;
    const s = getSession();
    if (!s) return;
    this.setStatus('connecting');
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/v1/live';
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', apiKey: s.apiKey, token: s.token }));
    ws.onmessage = (ev) => {
      let m: any;
      try {
        m = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (m.type === 'ready') {
        this.ready = true;
        this.backoff = 500;
        this.setStatus('live');
        for (const sub of this.subs.values()) this.send({ type: 'subscribe', id: sub.id, ...sub.topic });
        return;
      }
      if (m.id && this.subs.has(m.id)) this.subs.get(m.id)!.handler(m);
      else if (m.type === 'error') console.warn('live:', m.code, m.message);
    };
    ws.onclose = () => {
      this.ws = null;
      this.ready = false;
      if (this.subs.size === 0) {
        this.setStatus('idle');
        return;
      }
      this.setStatus('offline');
      this.timer = window.setTimeout(() => {
        this.timer = undefined;
        this.connect();
      }, this.backoff);
      this.backoff = Math.min(this.backoff * 2, 15000);
    };
  }

  close() {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    ws?.close();
    this.setStatus('idle');
  }
}

export const live = new LiveClient();
