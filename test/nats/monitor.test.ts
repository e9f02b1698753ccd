/** Monitoring sees NATS connections: /connz (with lang and version), /varz and /metrics count them. */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { until, useWorld } from '../kit/index.js';

const world = useWorld();
const clients: NatsConnection[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
});

async function get(port: number, path: string): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  expect(r.status).toBe(200);
  return r.text();
}

describe('monitoring of NATS connections', () => {
  it('/connz lists them with name, lang, version and subscriptions; /varz and /metrics count them', async () => {
    const b = await world.broker({ natsPort: 0, httpPort: 0 });
    const hb = await world.connect(b.url, { name: 'hopbus-side' });
    const c = await connect({ servers: `127.0.0.1:${b.broker.natsPort}`, name: 'pricer', reconnect: false });
    clients.push(c);
    c.subscribe('px.>', { queue: 'q', callback: () => {} });
    c.publish('px.x', 'one');
    await c.flush();
    await hb.flush();
    const http = b.broker.httpPort!;
    await until(() => [...b.broker.natsSessions].some((s) => s.stats.msgsIn === 1), 'the message counted');
    const connz = JSON.parse(await get(http, '/connz')) as { count: number; connections: Array<Record<string, unknown>> };
    expect(connz.count).toBe(2);
    const n = connz.connections.find((x) => x.protocol === 'nats')!;
    expect(n).toMatchObject({ name: 'pricer', lang: 'nats.js', transport: 'tcp', subscriptions: 1, msgsIn: 1, msgsOut: 1 });
    expect(n.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(n.subjects).toEqual([expect.objectContaining({ pattern: 'px.>', queue: 'q' })]);
    expect(connz.connections.find((x) => x.protocol === 'hopbus')).toMatchObject({ name: 'hopbus-side' });
    const varz = JSON.parse(await get(http, '/varz')) as Record<string, unknown> & { nats: { url: string; connections: number } };
    expect(varz.connections).toBe(2);
    expect(varz.nats).toEqual({ url: b.broker.natsUrl, connections: 1 });
    expect((varz.config as Record<string, unknown>).natsPort).toBe(b.broker.natsPort);
    const metrics = await get(http, '/metrics');
    expect(metrics).toContain('hopbus_connections 2');
    expect(metrics).toContain('hopbus_connections_by_protocol{protocol="nats"} 1');
    expect(metrics).toContain('hopbus_connections_by_protocol{protocol="hopbus"} 1');
    expect(metrics).toMatch(/hopbus_connection_pending_bytes\{cid="\d+",name="pricer",transport="tcp"\} \d+/);
  });
});
