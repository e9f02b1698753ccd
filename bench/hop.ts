/**
 * End-to-end cases, each implemented for hopbus and for the raw Node floor (a TCP
 * relay), so every figure comes with its same-run reference.
 *
 *  - hop: publisher and subscriber in this process (one clock), the broker or relay
 *    in its own process; one message in flight: the next is sent (on the next
 *    event-loop turn) once the previous has arrived. Latency = publish call to
 *    subscriber callback.
 *  - ping-pong: the answering side in another process; RTT, reported as RTT/2.
 *  - throughput: one publisher to one subscriber in this process, as fast as the
 *    publisher can go with bounded queues; messages counted at the subscriber.
 */
import net from 'node:net';
import { connectBroker, type Bus, type ConnectOptions } from '../client/index.js';
import { histogram, nowNs, percentiles, type Percentiles } from './stats.js';
import { startNode, type Proc } from './procs.js';

export interface ThroughputResult {
  msgsPerSec: number;
  sent: number;
  received: number;
  lost: number;
  seconds: number;
}

export interface Target {
  readonly name: string;
  hop(samples: number, warmup: number): Promise<Percentiles>;
  pingpong(samples: number, warmup: number): Promise<Percentiles>;
  throughput(count: number, payload: number): Promise<ThroughputResult>;
  close(): Promise<void>;
}

const HOP_PAYLOAD = 16;
const SUBJECT = 'bench.hop';
/** The size of a hopbus PUB frame for SUBJECT and a 16-byte payload, so the floor moves the same bytes. */
const FRAME_BYTES = 20 + SUBJECT.length + HOP_PAYLOAD;

const tick = () => new Promise<void>((r) => setImmediate(r));

async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 1));
  }
  return true;
}

// --- hopbus ---------------------------------------------------------------------------

export class HopbusTarget implements Target {
  private pub!: Bus;
  private sub!: Bus;
  private echo: Proc | null = null;
  constructor(
    readonly name: string,
    private readonly url: string,
    /** Extra connect options for both clients (e.g. timestamps, for the latency service). */
    private readonly options: ConnectOptions = {},
  ) {}

  async open(): Promise<this> {
    this.pub = await connectBroker(this.url, { name: 'bench-pub', ...this.options });
    this.sub = await connectBroker(this.url, { name: 'bench-sub', ...this.options });
    return this;
  }

  hop(samples: number, warmup: number): Promise<Percentiles> {
    const h = histogram();
    const payload = Buffer.alloc(HOP_PAYLOAD, 7);
    const pub = this.pub;
    let t0 = 0;
    let i = 0;
    return new Promise((resolve) => {
      const send = () => {
        t0 = nowNs();
        pub.publish(SUBJECT, payload);
      };
      const s = this.sub.subscribe(SUBJECT, () => {
        const dt = nowNs() - t0;
        if (i++ >= warmup) h.recordValue(Math.max(1, Math.round(dt)));
        if (i < samples + warmup) setImmediate(send);
        else {
          s.unsubscribe();
          resolve(percentiles(h));
        }
      });
      void this.sub.flush().then(send);
    });
  }

  async pingpong(samples: number, warmup: number): Promise<Percentiles> {
    this.echo ??= await startNode('bench/echo.js', ['hopbus', this.url], /^READY/);
    const h = histogram();
    const payload = Buffer.alloc(HOP_PAYLOAD, 7);
    let t0 = 0;
    let i = 0;
    return new Promise((resolve) => {
      const send = () => {
        t0 = nowNs();
        this.pub.publish('bench.ping', payload);
      };
      const s = this.pub.subscribe('bench.pong', () => {
        const rtt = nowNs() - t0;
        if (i++ >= warmup) h.recordValue(Math.max(1, Math.round(rtt / 2)));
        if (i < samples + warmup) setImmediate(send);
        else {
          s.unsubscribe();
          resolve(percentiles(h));
        }
      });
      void this.pub.flush().then(send);
    });
  }

  async throughput(count: number, size: number): Promise<ThroughputResult> {
    const payload = Buffer.alloc(size, 7);
    let received = 0;
    const s = this.sub.subscribe('bench.tp', () => {
      received++;
    });
    await this.sub.flush();
    const pub = this.pub;
    const t0 = nowNs();
    let sent = 0;
    while (sent < count) {
      const end = Math.min(count, sent + 1000);
      for (; sent < end; sent++) pub.publish('bench.tp', payload);
      // Bounded queues: let the socket and the subscriber catch up before going on.
      if (pub.pendingBytes > 1 << 20) await until(() => pub.pendingBytes < 1 << 18, 10_000);
      else await tick();
    }
    await until(() => received >= count, 20_000);
    const seconds = (nowNs() - t0) / 1e9;
    s.unsubscribe();
    await this.sub.flush();
    return { msgsPerSec: Math.round(received / seconds), sent, received, lost: sent - received, seconds };
  }

  async close(): Promise<void> {
    await this.echo?.stop();
    await this.pub.close();
    await this.sub.close();
  }
}

// --- the floor: raw sockets through a relay ----------------------------------------------

export class RelayTarget implements Target {
  readonly name = 'node-tcp-relay';
  private a!: net.Socket;
  private b!: net.Socket;
  private echo: Proc | null = null;
  constructor(private readonly port: number) {}

  private dial(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: this.port, noDelay: true }, () => resolve(s));
      s.once('error', reject);
    });
  }

  async open(): Promise<this> {
    this.a = await this.dial();
    this.b = await this.dial();
    await new Promise((r) => setTimeout(r, 50)); // the relay has registered both
    return this;
  }

  /** Moves `frame`-sized records from a to b (or to the echo and back), one in flight. */
  private oneInFlight(to: net.Socket, from: net.Socket, samples: number, warmup: number, halve: boolean): Promise<Percentiles> {
    const h = histogram();
    const msg = Buffer.alloc(FRAME_BYTES, 7);
    let t0 = 0;
    let i = 0;
    let got = 0;
    return new Promise((resolve) => {
      const send = () => {
        t0 = nowNs();
        to.write(msg);
      };
      const onData = (chunk: Buffer) => {
        got += chunk.length;
        while (got >= FRAME_BYTES) {
          got -= FRAME_BYTES;
          const dt = nowNs() - t0;
          if (i++ >= warmup) h.recordValue(Math.max(1, Math.round(halve ? dt / 2 : dt)));
          if (i < samples + warmup) setImmediate(send);
          else {
            from.off('data', onData);
            resolve(percentiles(h));
          }
        }
      };
      from.on('data', onData);
      send();
    });
  }

  hop(samples: number, warmup: number): Promise<Percentiles> {
    return this.oneInFlight(this.a, this.b, samples, warmup, false);
  }

  async pingpong(samples: number, warmup: number): Promise<Percentiles> {
    if (this.echo === null) {
      // b would also receive the echo's bytes: close it so the relay pairs a with the echo only.
      this.b.destroy();
      await new Promise((r) => setTimeout(r, 50));
      this.echo = await startNode('bench/echo.js', ['raw', String(this.port)], /^READY/);
      await new Promise((r) => setTimeout(r, 50));
    }
    return this.oneInFlight(this.a, this.a, samples, warmup, true);
  }

  async throughput(count: number, size: number): Promise<ThroughputResult> {
    const rec = 20 + 'bench.tp'.length + size;
    const batch = Buffer.alloc(rec * 1000, 7);
    let bytes = 0;
    const onData = (c: Buffer) => {
      bytes += c.length;
    };
    this.b.on('data', onData);
    const t0 = nowNs();
    let sent = 0;
    while (sent < count) {
      const n = Math.min(1000, count - sent);
      this.a.write(n === 1000 ? batch : batch.subarray(0, n * rec));
      sent += n;
      if (this.a.writableLength > 1 << 20) await until(() => this.a.writableLength < 1 << 18, 10_000);
      else await tick();
    }
    await until(() => bytes >= count * rec, 20_000);
    const seconds = (nowNs() - t0) / 1e9;
    this.b.off('data', onData);
    const received = Math.floor(bytes / rec);
    return { msgsPerSec: Math.round(received / seconds), sent, received, lost: sent - received, seconds };
  }

  async close(): Promise<void> {
    await this.echo?.stop();
    this.a.destroy();
    this.b.destroy();
  }
}
