/**
 * Mosquitto, driven by MQTT.js at QoS 0. Started as `mosquitto -c <conf>` with a
 * configuration written to the bench's temporary folder (a loopback listener,
 * anonymous access, no persistence). Subjects map to topics: '.' -> '/', '*' -> '+',
 * '>' -> '#'.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { MqttClient, type IClientOptions } from 'mqtt';
import { startProcess } from '../../procs.js';
import { findBinary, firstLine, freePort, libVersion, portOpen } from '../host.js';
import { SkipError, type BusClient, type OnMessage, type Server, type Target } from '../target.js';

export const mosquittoServer: Server = {
  name: 'mosquitto',
  packages: ['mosquitto'],
  async start(tmpDir) {
    const bin = findBinary('mosquitto');
    if (bin === null) throw new SkipError('mosquitto is not installed');
    const port = await freePort();
    const conf = path.join(tmpDir, 'mosquitto.conf');
    fs.writeFileSync(
      conf,
      [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'log_dest stderr', 'log_type error', 'log_type warning', ''].join('\n'),
    );
    const proc = await startProcess(bin, ['-c', conf], null, { probe: () => portOpen(port) });
    return {
      endpoints: { port },
      version: firstLine(bin, ['-h']),
      command: `mosquitto -c ${conf} (listener ${port} 127.0.0.1, allow_anonymous true, persistence false)`,
      stop: proc.stop,
    };
  },
};

const toTopic = (subject: string) => subject.replaceAll('.', '/').replaceAll('*', '+').replace(/>$/, '#');

/** Whether an MQTT filter (with + and #) matches a topic. */
function filterRegExp(filter: string): RegExp {
  const parts = filter.split('/').map((t) => (t === '+' ? '[^/]+' : t === '#' ? '.*' : t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${parts.join('/')}$`);
}

const PUBLISH_OPTS = { qos: 0, retain: false, dup: false } as const;

/**
 * MQTT.js hands every message of a connection to one 'message' event; this routes it
 * to the subscription whose filter matches. With one subscription (most cases) the
 * handler is called directly.
 */
class MqttBusClient implements BusClient {
  private readonly subs: { re: RegExp; fn: OnMessage }[] = [];
  private only: OnMessage | null = null;

  constructor(private readonly client: MqttClient) {
    client.on('message', (topic, payload) => {
      if (this.only !== null) return this.only(payload);
      for (const s of this.subs) if (s.re.test(topic)) s.fn(payload);
    });
  }

  publish(subject: string, payload: Uint8Array): void {
    this.client.publish(toTopic(subject), payload as Buffer, PUBLISH_OPTS);
  }

  async subscribe(pattern: string, onMessage: OnMessage): Promise<void> {
    const topic = toTopic(pattern);
    this.subs.push({ re: filterRegExp(topic), fn: onMessage });
    this.only = this.subs.length === 1 ? onMessage : null;
    await this.client.subscribeAsync(topic, { qos: 0 });
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

export const mqtt: Target = {
  name: 'mqtt',
  kind: 'peer',
  server: mosquittoServer.name,
  client: libVersion('mqtt'),
  settings: [
    'QoS 0, MQTT 3.1.1, clean session',
    'TCP_NODELAY on: the socket is made by the bench with noDelay, as MQTT.js does not set it',
    'reschedulePings: false (no keepalive timer reset on every packet sent; keepalive 60 s)',
    "writes as MQTT.js makes them (mqtt-packet corks a packet's pieces and uncorks on nextTick: no timer)",
    'reconnect off',
  ],
  wildcards: true,
  duplex: true,
  endpoint: (s) => ({ port: s.endpoints.port! }),
  connect(ep, name) {
    const opts: IClientOptions = {
      clientId: `${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
      protocolVersion: 4,
      clean: true,
      keepalive: 60,
      reschedulePings: false,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
    };
    const client = new MqttClient(() => net.connect({ host: '127.0.0.1', port: Number(ep.port), noDelay: true }), opts);
    return new Promise((resolve, reject) => {
      client.once('connect', () => resolve(new MqttBusClient(client)));
      client.once('error', reject);
    });
  },
};
