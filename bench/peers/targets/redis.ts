/**
 * Redis pub/sub, driven by ioredis. Started as `redis-server --port PORT --bind 127.0.0.1
 * --save '' --appendonly no` in the bench's temporary folder. Subjects are channel
 * names as they are; wildcard subscriptions become PSUBSCRIBE glob patterns
 * ('a.*.c' -> 'a.*.c', 'a.>' -> 'a.*'), which match the subjects the workloads use.
 */
import { Redis } from 'ioredis';
import { startProcess } from '../../procs.js';
import { findBinary, firstLine, freePort, libVersion, portOpen } from '../host.js';
import { SkipError, type BusClient, type OnMessage, type Server, type Target } from '../target.js';

export const redisServer: Server = {
  name: 'redis-server',
  packages: ['redis-server'],
  async start(tmpDir) {
    const bin = findBinary('redis-server');
    if (bin === null) throw new SkipError('redis-server is not installed');
    const port = await freePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmpDir];
    const proc = await startProcess(bin, args, /Ready to accept connections/, { watch: 'both', probe: () => portOpen(port) });
    return {
      endpoints: { port },
      version: redisVersion(firstLine(bin, ['--version'])),
      command: `redis-server ${args.map((a) => (a === '' ? "''" : a)).join(' ')}`,
      stop: proc.stop,
    };
  },
};

/** 'Redis server v=7.0.15 sha=... malloc=...' -> 'redis-server 7.0.15'. */
const redisVersion = (line: string) => {
  const v = /v=(\S+)/.exec(line);
  return v ? `redis-server ${v[1]}` : line;
};

const isPattern = (p: string) => p.includes('*') || p.includes('>');
const toGlob = (p: string) => p.replace(/>$/, '*');
const noop = () => {};

/**
 * One ioredis connection. A connection that has subscribed only listens (Redis's
 * rule), so the workloads publish and subscribe on separate ones (duplex: false).
 */
class RedisClient implements BusClient {
  private readonly channels = new Map<string, OnMessage>();
  private readonly patterns = new Map<string, OnMessage>();
  private only: OnMessage | null = null;

  constructor(private readonly redis: Redis) {
    // The Buffer events skip ioredis's toString of channel and payload. With one
    // subscription (most cases) the handler is called without looking up the channel.
    redis.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      const h = this.only ?? this.channels.get(channel.toString());
      if (h !== undefined) h(message);
    });
    redis.on('pmessageBuffer', (pattern: string, _channel: Buffer, message: Buffer) => {
      const h = this.only ?? this.patterns.get(pattern);
      if (h !== undefined) h(message);
    });
    redis.on('error', noop); // reported through the failing command
  }

  publish(subject: string, payload: Uint8Array): void {
    // ioredis returns a promise per command; its rejection is ignored here, as a lost
    // message shows up in the receive counts.
    this.redis.publish(subject, payload as Buffer, noop);
  }

  async subscribe(pattern: string, onMessage: OnMessage): Promise<void> {
    if (isPattern(pattern)) {
      const glob = toGlob(pattern);
      this.patterns.set(glob, onMessage);
      await this.redis.psubscribe(glob);
    } else {
      this.channels.set(pattern, onMessage);
      await this.redis.subscribe(pattern);
    }
    this.only = this.channels.size + this.patterns.size === 1 ? onMessage : null;
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

export const redis: Target = {
  name: 'redis',
  kind: 'peer',
  server: redisServer.name,
  client: libVersion('ioredis'),
  settings: [
    'noDelay: true (TCP_NODELAY; the default)',
    'enableAutoPipelining: false (the default: each command is written when issued, no per-tick batching)',
    'RESP3 (the default), messageBuffer/pmessageBuffer events (no string decoding of payloads)',
    'separate connections to publish and to subscribe (a subscribed Redis connection cannot publish)',
  ],
  wildcards: true,
  duplex: false,
  endpoint: (s) => ({ port: s.endpoints.port! }),
  async connect(ep, name) {
    const r = new Redis({
      host: '127.0.0.1',
      port: Number(ep.port),
      connectionName: name,
      noDelay: true,
      enableAutoPipelining: false,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    await r.connect();
    return new RedisClient(r);
  },
};
