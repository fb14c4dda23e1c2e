// The notification WebSocket: subscribe, dispatch events, reconnect with back-off.

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 30000;

/** Exponential back-off with jitter: 0.5 s, 1 s, 2 s … up to 30 s, each ±50 %. */
export function backoffDelay(attempt) {
  const base = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** Math.min(attempt, 16));
  return Math.round(base * (0.5 + Math.random() * 0.5));
}

/** ws:// or wss:// URL of the notification endpoint, with the token if any. */
export function socketUrl(path, token) {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  if (token) {
    url.searchParams.set('token', token);
  }
  return url.toString();
}

/**
 * A WebSocket that stays connected: it subscribes on every (re)connection, watches heartbeats
 * and reconnects with back-off when the connection drops or goes silent.
 */
export class LiveSocket {
  constructor(url, services, handlers) {
    this.url = url;
    this.services = services;
    this.handlers = handlers;
    this.attempt = 0;
    this.ws = null;
    this.timer = null;
    this.heartbeatMs = 15000;
    this.lastSeen = 0;
    this.connections = 0;
    this.watchdog = setInterval(() => this.checkAlive(), 1000);
    window.addEventListener('online', () => this.reconnectNow());
  }

  start() {
    this.connect();
  }

  status(state, detail) {
    if (this.handlers.status) {
      this.handlers.status(state, detail);
    }
  }

  connect() {
    this.timer = null;
    this.status('connecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.scheduleReconnect(String(err));
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.connections += 1;
      this.lastSeen = Date.now();
      ws.send(JSON.stringify({op: 'subscribe', services: this.services}));
      this.status('live');
    };
    ws.onmessage = (event) => {
      this.lastSeen = Date.now();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.event === 'hello' && message.heartbeatSeconds > 0) {
        this.heartbeatMs = message.heartbeatSeconds * 1000;
      }
      const handler = this.handlers[message.event];
      if (handler) {
        handler(message);
      }
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) {
        return;
      }
      this.ws = null;
      this.scheduleReconnect(event.reason || `closed (${event.code})`);
    };
  }

  scheduleReconnect(reason) {
    if (this.timer !== null) {
      return;
    }
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.status('offline', `${reason}; retrying in ${(delay / 1000).toFixed(1)} s`);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) {
      return;
    }
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.connect();
  }

  /** A connection that has been silent for three heartbeats is dead: drop it and reconnect. */
  checkAlive() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return;
    }
    if (Date.now() - this.lastSeen > 3 * this.heartbeatMs + 5000) {
      this.ws = null;
      ws.close();
      this.scheduleReconnect('no heartbeat');
    }
  }
}
