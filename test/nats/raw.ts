/**
 * A raw NATS socket for tests: writes whatever bytes a test gives it and keeps what
 * the server sends, so tests can send what no official client would.
 */
import net from 'node:net';
import { until } from '../kit/index.js';

export class RawNats {
  text = '';
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => (this.text += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => (this.closed = true));
  }

  static async dial(port: number): Promise<RawNats> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const r = new RawNats(socket);
    await r.waitFor(/^INFO \{.*\}\r\n/, 'INFO');
    return r;
  }

  write(s: string | Buffer): void {
    this.socket.write(s);
  }

  async waitFor(re: RegExp, what: string): Promise<RegExpMatchArray> {
    await until(() => re.test(this.text) || this.closed, `${what} (got ${JSON.stringify(this.text.slice(-300))})`);
    const m = this.text.match(re);
    if (m === null) throw new Error(`connection closed before ${what}; got ${JSON.stringify(this.text.slice(-300))}`);
    return m;
  }

  async waitClosed(what: string): Promise<void> {
    await until(() => this.closed, `${what}: the server closes the connection (got ${JSON.stringify(this.text.slice(-300))})`);
  }

  /** The server's lines after INFO, control lines only (payloads are short in these tests). */
  get lines(): string[] {
    return this.text.split('\r\n').filter((l) => l !== '' && !l.startsWith('INFO '));
  }
}
