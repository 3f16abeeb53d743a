// A minimal WHATWG EventSource for Node 20, which has none: enough for the OFREP web
// provider (open/message/error listeners, readyState, close, Last-Event-ID, retry). It
// reads the stream with fetch and parses the text/event-stream format.
export class EventSource extends EventTarget {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;
  static instances = [];

  constructor(url) {
    super();
    this.url = String(url);
    this.readyState = EventSource.CONNECTING;
    this.lastEventId = '';
    this.retry = 1000;
    this.opened = 0;
    this._abort = new AbortController();
    EventSource.instances.push(this);
    this._connect();
  }

  close() {
    this.readyState = EventSource.CLOSED;
    this._abort.abort();
  }

  async _connect() {
    while (this.readyState !== EventSource.CLOSED) {
      try {
        const headers = { Accept: 'text/event-stream' };
        if (this.lastEventId) headers['Last-Event-ID'] = this.lastEventId;
        const res = await fetch(this.url, { headers, signal: this._abort.signal });
        if (res.status !== 200 || !/^text\/event-stream/.test(res.headers.get('content-type') || '')) {
          this.readyState = EventSource.CLOSED;
          this.dispatchEvent(new Event('error'));
          return;
        }
        this.readyState = EventSource.OPEN;
        this.opened++;
        this.dispatchEvent(new Event('open'));
        await this._read(res.body);
      } catch {
        if (this.readyState === EventSource.CLOSED) return;
      }
      if (this.readyState === EventSource.CLOSED) return;
      this.readyState = EventSource.CONNECTING;
      this.dispatchEvent(new Event('error'));
      await new Promise((r) => setTimeout(r, this.retry));
    }
  }

  async _read(body) {
    const decoder = new TextDecoder();
    let buf = '';
    let data = [];
    let type = '';
    for await (const chunk of body) {
      buf += decoder.decode(chunk, { stream: true });
      let nl;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
        if (line === '') {
          if (data.length > 0) {
            const ev = new MessageEvent(type || 'message', { data: data.join('\n'), lastEventId: this.lastEventId });
            this.dispatchEvent(ev);
          }
          data = [];
          type = '';
          continue;
        }
        if (line.startsWith(':')) continue;
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        let value = i < 0 ? '' : line.slice(i + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'data') data.push(value);
        else if (field === 'event') type = value;
        else if (field === 'id') this.lastEventId = value;
        else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
      }
    }
  }
}
