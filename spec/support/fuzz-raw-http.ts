import net from 'node:net';

// Send raw bytes to a server and read back what it says, whatever it is: one HTTP/1.x response
// parsed strictly enough to call it well-formed (status line, header block, body framed by
// Content-Length, chunked or close), or the reason it is not. Never trusts the input it sent.

export interface RawOutcome {
  kind: 'response' | 'closed-silently' | 'malformed' | 'hang' | 'error';
  status?: number;
  headers?: Record<string, string>;
  body?: Buffer;
  detail?: string;
  ms: number;
}

export function sendRaw(
  port: number,
  bytes: Buffer,
  opts: { timeoutMs: number; head?: boolean; halfClose?: boolean },
): Promise<RawOutcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const parts: Buffer[] = [];
    let done = false;
    const finish = (o: Omit<RawOutcome, 'ms'>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...o, ms: Date.now() - started });
    };
    const timer = setTimeout(() => {
      const got = Buffer.concat(parts);
      finish(
        got.length
          ? { kind: 'hang', detail: `partial answer then silence: ${JSON.stringify(got.subarray(0, 200).toString('latin1'))}` }
          : { kind: 'hang', detail: 'no byte, connection left open' },
      );
    }, opts.timeoutMs);
    socket.on('connect', () => {
      socket.write(bytes, () => {
        if (opts.halfClose !== false) socket.end();
      });
    });
    socket.on('data', (c: Buffer) => {
      parts.push(c);
      const parsed = parseResponse(Buffer.concat(parts), opts.head ?? false, false);
      if (parsed) finish(parsed);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const got = Buffer.concat(parts);
      if (got.length === 0)
        finish({ kind: err.code === 'ECONNRESET' || err.code === 'EPIPE' ? 'closed-silently' : 'error', detail: err.code ?? err.message });
      else finish(parseResponse(got, opts.head ?? false, true) ?? { kind: 'malformed', detail: `reset mid-answer (${err.code})` });
    });
    socket.on('close', () => {
      const got = Buffer.concat(parts);
      if (got.length === 0) finish({ kind: 'closed-silently' });
      else
        finish(
          parseResponse(got, opts.head ?? false, true) ?? {
            kind: 'malformed',
            detail: `closed mid-answer: ${JSON.stringify(got.subarray(0, 300).toString('latin1'))}`,
          },
        );
    });
  });
}

/** The first complete response in `data`, or null when more bytes are needed (unless `closed`). */
export function parseResponse(data: Buffer, head: boolean, closed: boolean): Omit<RawOutcome, 'ms'> | null {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return closed ? { kind: 'malformed', detail: 'no complete header block' } : null;
  const lines = data.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] ([1-5]\d\d) [^\r\n]*$/.exec(lines[0]);
  if (!m) return { kind: 'malformed', detail: `status line ${JSON.stringify(lines[0])}` };
  const status = Number(m[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const h = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (!h) return { kind: 'malformed', detail: `header line ${JSON.stringify(line)}` };
    const name = h[1].toLowerCase();
    if (name in headers && (name === 'content-length' || name === 'transfer-encoding'))
      return { kind: 'malformed', detail: `duplicate ${name}` };
    headers[name] = name in headers ? `${headers[name]}, ${h[2]}` : h[2];
  }
  const rest = data.subarray(end + 4);
  if (status < 200) return parseResponse(rest, head, closed); // interim (100 Continue)
  if (head || status === 204 || status === 304) return { kind: 'response', status, headers, body: Buffer.alloc(0) };
  if (headers['transfer-encoding'] !== undefined) {
    if (headers['content-length'] !== undefined) return { kind: 'malformed', detail: 'both Content-Length and Transfer-Encoding' };
    if (!/(^|,)\s*chunked\s*$/i.test(headers['transfer-encoding']))
      return { kind: 'malformed', detail: `Transfer-Encoding ${headers['transfer-encoding']}` };
    const body = dechunk(rest);
    if (body === 'bad') return { kind: 'malformed', detail: 'bad chunk framing' };
    if (body === null) return closed ? { kind: 'malformed', detail: 'chunked body cut' } : null;
    return { kind: 'response', status, headers, body };
  }
  if (headers['content-length'] !== undefined) {
    if (!/^\d+$/.test(headers['content-length'])) return { kind: 'malformed', detail: `Content-Length ${headers['content-length']}` };
    const length = Number(headers['content-length']);
    if (rest.length < length) return closed ? { kind: 'malformed', status, headers, detail: `body cut at ${rest.length}/${length}` } : null;
    return { kind: 'response', status, headers, body: rest.subarray(0, length) };
  }
  return closed ? { kind: 'response', status, headers, body: rest } : null;
}

function dechunk(data: Buffer): Buffer | null | 'bad' {
  const out: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', pos);
    if (eol < 0) return null;
    const size = /^([0-9a-fA-F]+)(;.*)?$/.exec(data.subarray(pos, eol).toString('latin1'));
    if (!size) return 'bad';
    const n = parseInt(size[1], 16);
    if (n === 0) {
      const trailerEnd = data.indexOf('\r\n', eol + 2);
      return trailerEnd < 0 ? null : Buffer.concat(out);
    }
    if (data.length < eol + 2 + n + 2) return null;
    out.push(data.subarray(eol + 2, eol + 2 + n));
    pos = eol + 2 + n + 2;
  }
}
