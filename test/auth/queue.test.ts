/**
 * Queue-group rules in subscribe permissions, as nats-server has them: an entry
 * "subject queue" ("orders.> workers") allows that subject only in that group; a plain
 * entry allows any group and none, unless a queue entry covers the pattern too and the
 * SUB names a group; a deny entry with a group refuses only that group, a plain deny
 * refuses every group (deny wins). Decided by Permissions, refused on the hopbus
 * protocol and on the NATS listener with the words nats-server uses, validated in the
 * config, and, where nats-server is installed, compared with its decisions on the same
 * rules.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { authOptionProblem, Permissions, type PermissionsConfig } from '../../broker/auth/index.js';
import { startBroker, type BrokerOptions, type StartedBroker } from '../../broker/index.js';
import { ServerError, type Bus, type Msg } from '../../client/index.js';
import { until, useWorld } from '../kit/index.js';
import { describeNeeding } from '../kit/guards.js';
import { natsServerProblem } from '../leaf/hub.js';

const world = useWorld();
const nc: NatsConnection[] = [];
afterEach(async () => {
  await Promise.all(nc.splice(0).map((c) => c.close().catch(() => undefined)));
});

/** The rules of every test below, and of the nats-server comparison. */
const RULES: PermissionsConfig = {
  subscribe: {
    allow: ['foo.> workers', 'bar.>', 'bar.x other', 'qux.*', '_INBOX.>'],
    deny: ['qux.a q1', 'qux.b', 'bar.y.> q3'],
  },
};

/** [pattern, queue ('' for none), allowed]: cases where a wildcard SUB overlaps no deny (nats-server filters those at delivery, hopbus refuses them). */
const MATRIX: Array<[string, string, boolean]> = [
  ['foo.a', '', false], // only a queue entry covers it
  ['foo.a', 'workers', true],
  ['foo.a', 'other', false],
  ['foo.*', 'workers', true],
  ['foo.>', 'workers', true],
  ['bar.y', '', true], // plain entry: any group and none
  ['bar.y', 'anyone', true],
  ['bar.x', '', true], // a queue entry does not apply to a SUB without a group
  ['bar.x', 'other', true],
  ['bar.x', 'workers', false], // a queue entry covers bar.x and names another group
  ['bar.y.z', 'q3', false], // denied for q3
  ['bar.y.z', 'q4', true],
  ['bar.y.z', '', true],
  ['qux.a', '', true],
  ['qux.a', 'q1', false], // denied for q1 only
  ['qux.a', 'q2', true],
  ['qux.b', '', false], // plain deny: every group
  ['qux.b', 'q1', false],
  ['zzz', '', false],
  ['zzz', 'workers', false],
];

describe('queue-group rules, decided', () => {
  it('the matrix', () => {
    const p = new Permissions(RULES);
    for (const [pattern, queue, ok] of MATRIX) expect(p.maySubscribe(pattern, queue), `${pattern} in ${JSON.stringify(queue)}`).toBe(ok);
  });

  it('deny wins over allow entries for the same group, and a plain deny over a queue allow', () => {
    const p = new Permissions({ subscribe: { allow: ['orders.> workers', 'orders.>'], deny: ['orders.new workers', 'orders.secret'] } });
    expect(p.maySubscribe('orders.new', 'workers')).toBe(false);
    expect(p.maySubscribe('orders.new', '')).toBe(true);
    expect(p.maySubscribe('orders.old', 'workers')).toBe(true);
    expect(p.maySubscribe('orders.secret', 'workers')).toBe(false);
    // A wildcard that could see a subject denied to its group is refused; another group's denial does not matter.
    expect(p.maySubscribe('orders.*', 'workers')).toBe(false);
    expect(p.maySubscribe('orders.*', 'others')).toBe(false); // orders.secret is denied to every group
  });

  it('`*` and `>` as the queue part: any group, and still not without one', () => {
    const p = new Permissions({ subscribe: { allow: ['jobs.> *', 'logs.> >'], deny: ['jobs.secret *'] } });
    expect(p.maySubscribe('jobs.a', 'w1')).toBe(true);
    expect(p.maySubscribe('logs.a', 'w2')).toBe(true);
    expect(p.maySubscribe('jobs.a', '')).toBe(false);
    expect(p.maySubscribe('jobs.secret', 'w1')).toBe(false);
  });

  it('$SYS stays reserved: a queue entry under $SYS grants it for that group only', () => {
    const p = new Permissions({ subscribe: { allow: ['$SYS.stats ops', 'md.>'] } });
    expect(p.maySubscribe('$SYS.stats', 'ops')).toBe(true);
    expect(p.maySubscribe('$SYS.stats', 'others')).toBe(false);
    expect(p.maySubscribe('$SYS.stats', '')).toBe(false);
    expect(p.maySubscribe('md.a', 'ops')).toBe(true);
  });

  it('an entry with extra whitespace is the same rule', () => {
    const p = new Permissions({ subscribe: ['  foo.>\tworkers  '] });
    expect(p.maySubscribe('foo.a', 'workers')).toBe(true);
    expect(p.maySubscribe('foo.a', 'other')).toBe(false);
  });
});

describe('queue-group rules in the config', () => {
  const user = (permissions: unknown) => [{ user: 'u', password: 'p', permissions }];

  it('accepts subject-and-queue entries in subscribe rules', () => {
    expect(authOptionProblem('users', user(RULES))).toBeNull();
    expect(authOptionProblem('users', user({ subscribe: ['jobs.> *', 'logs.> >'] }))).toBeNull();
  });

  it('refuses a bad entry, naming it', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ subscribe: ['foo.> a b'] }, /users\[0\]\.permissions\.subscribe\[0\] "foo\.> a b" has 3 parts/],
      [{ subscribe: { deny: ['ok', 'foo..> q'] } }, /users\[0\]\.permissions\.subscribe\.deny\[1\] must be a valid subject pattern.*"foo\.\.> q"/],
      [{ subscribe: { allow: ['foo.> q.x'] } }, /subscribe\.allow\[0\] "foo\.> q\.x": queue group name "q\.x" contains "\."/],
      [{ subscribe: ['foo.> w*'] }, /subscribe\[0\] "foo\.> w\*": queue group name "w\*" contains a wildcard/],
      [{ publish: ['md.> workers'] }, /publish\[0\] "md\.> workers" names a queue group: only subscribe rules take one/],
      [{ publish: { deny: ['md..x'] } }, /publish\.deny\[0\] must be a valid subject pattern, got "md\.\.x"/],
      [{ subscribe: [7] }, /subscribe\[0\] must be a subject pattern \(a string\), got 7/],
    ];
    for (const [perms, re] of cases) expect(authOptionProblem('users', user(perms))).toMatch(re);
  });

  it('startBroker refuses one', async () => {
    await expect(
      startBroker({ host: '127.0.0.1', port: 0, logLevel: 'silent', users: user({ subscribe: ['foo.> a b'] }) as BrokerOptions['users'] }),
    ).rejects.toThrow(/broker option users\[0\]\.permissions\.subscribe\[0\] "foo\.> a b" has 3 parts/);
  });
});

const OPTS: BrokerOptions = {
  natsPort: 0,
  users: [
    { user: 'admin', password: 'a', permissions: { publish: ['>'], subscribe: ['>'] } },
    { user: 'worker', password: 'w', permissions: RULES },
  ],
};

function errors(bus: Bus): ServerError[] {
  const got: ServerError[] = [];
  bus.on('error', (e: Error) => {
    if (e instanceof ServerError) got.push(e);
  });
  return got;
}

describe('queue-group rules on the hopbus protocol', () => {
  it('a SUB in an allowed group works, in another group or none is refused with the group named, and counted', async () => {
    const b = await world.broker(OPTS);
    const adm = await world.connect(b.url, { user: 'admin', pass: 'a' });
    const w = await world.connect(b.url, { user: 'worker', pass: 'w' });
    const errs = errors(w);
    const got: Msg[] = [];
    const wrong: Msg[] = [];
    w.subscribe('foo.jobs', (m) => void wrong.push(m), { queue: 'other' });
    w.subscribe('foo.jobs', (m) => void wrong.push(m));
    w.subscribe('qux.a', (m) => void wrong.push(m), { queue: 'q1' });
    w.subscribe('foo.jobs', (m) => void got.push(m), { queue: 'workers' });
    w.subscribe('qux.a', (m) => void got.push(m), { queue: 'q2' });
    await w.flush();
    await until(() => errs.length === 3, 'three refusals');
    expect(errs.map((e) => [e.code, e.fatal, e.message.replace('server error AUTH: ', '')])).toEqual([
      ['AUTH', false, 'Permissions Violation for Subscription to "foo.jobs" using queue "other"'],
      ['AUTH', false, 'Permissions Violation for Subscription to "foo.jobs"'],
      ['AUTH', false, 'Permissions Violation for Subscription to "qux.a" using queue "q1"'],
    ]);
    expect(b.broker.counters.permissionViolations).toBe(3);
    adm.publish('foo.jobs', '1');
    adm.publish('qux.a', '2');
    await adm.flush();
    await until(() => got.length === 2, 'the allowed queue subscriptions');
    await w.flush();
    expect(got.map((m) => m.string()).sort()).toEqual(['1', '2']);
    expect(wrong).toEqual([]);
    expect(w.connected).toBe(true);
    const session = [...b.broker.sessions].find((s) => s.identity?.name === 'worker')!;
    expect([...session.subs.values()].map((s) => [s.pattern, s.queue])).toEqual([
      ['foo.jobs', 'workers'],
      ['qux.a', 'q2'],
    ]);
  });
});

describe('queue-group rules on the NATS listener', () => {
  it('nats.js: a queue subscription in an allowed group gets messages, one in another group is told and gets none', async () => {
    const b = await world.broker(OPTS);
    const adm = await world.connect(b.url, { user: 'admin', pass: 'a' });
    const c = await connect({ servers: `127.0.0.1:${b.broker.natsPort}`, user: 'worker', pass: 'w', reconnect: false });
    nc.push(c);
    const told: string[] = [];
    const wrong: string[] = [];
    const got: string[] = [];
    c.subscribe('foo.jobs', {
      queue: 'other',
      callback: (e, m) => {
        if (e !== null) told.push(e.message);
        else wrong.push(m.string());
      },
    });
    c.subscribe('foo.jobs', { queue: 'workers', callback: (e, m) => void (e === null && got.push(m.string())) });
    await c.flush();
    await until(() => b.broker.counters.permissionViolations === 1, 'the refusal counted');
    adm.publish('foo.jobs', 'job');
    await adm.flush();
    await until(() => got.length === 1, 'the allowed one');
    await c.flush();
    expect(wrong).toEqual([]);
    await until(() => told.length === 1, 'nats.js told the subscription');
    expect(told[0]!.toLowerCase()).toContain('permissions violation for subscription to "foo.jobs" using queue "other"');
    expect(c.isClosed()).toBe(false);
  });
});

/** The matrix over one raw NATS connection: each SUB followed by a PING; refused when an -ERR comes before its PONG. */
async function decisions(port: number, user: string, pass: string): Promise<boolean[]> {
  const socket = net.connect({ host: '127.0.0.1', port });
  let text = '';
  let closed = false;
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  try {
    // nats-server ends its INFO line with " \r\n", hopbus with "\r\n".
    await until(() => /^INFO \{.*\} ?\r\n/.test(text) || closed, 'INFO');
    socket.write(`CONNECT ${JSON.stringify({ verbose: false, pedantic: false, user, pass })}\r\nPING\r\n`);
    await until(() => text.includes('PONG\r\n') || closed, 'the CONNECT answered');
    const out: boolean[] = [];
    let sid = 1;
    for (const [pattern, queue] of MATRIX) {
      const before = text.length;
      socket.write(`SUB ${pattern}${queue === '' ? '' : ` ${queue}`} ${sid++}\r\nPING\r\n`);
      await until(() => text.indexOf('PONG\r\n', before) >= 0 || closed, `the PONG after SUB ${pattern} ${queue}`);
      const answer = text.slice(before);
      expect(closed, answer).toBe(false);
      out.push(!/-ERR 'Permissions Violation/.test(answer));
    }
    return out;
  } finally {
    socket.destroy();
  }
}

/** nats-server's config for RULES: the same entries, in its syntax (JSON is valid there). */
function natsConf(): string {
  const users = [{ user: 'worker', password: 'w', permissions: { subscribe: RULES.subscribe } }];
  return `authorization { users = ${JSON.stringify(users)} }\n`;
}

describeNeeding('nats-server', natsServerProblem())('queue-group rules against nats-server', () => {
  let dir = '';
  let proc: ChildProcess | null = null;
  let port = 0;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hopbus-queue-perm-'));
    fs.writeFileSync(path.join(dir, 'nats.conf'), natsConf());
    const p = spawn('nats-server', ['-a', '127.0.0.1', '-p', '-1', '-c', path.join(dir, 'nats.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = p;
    let log = '';
    p.stdout.on('data', (d: Buffer) => (log += d.toString()));
    p.stderr.on('data', (d: Buffer) => (log += d.toString()));
    await until(() => /Listening for client connections on 127\.0\.0\.1:\d+/.test(log) || p.exitCode !== null, 'nats-server listening');
    const m = /Listening for client connections on 127\.0\.0\.1:(\d+)/.exec(log);
    if (m === null) throw new Error(`nats-server did not start: ${log}`);
    port = Number(m[1]);
  });
  afterAll(() => {
    proc?.kill('SIGKILL');
    if (dir !== '') fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the NATS listener decides every case of the matrix as nats-server does', async () => {
    const theirs = await decisions(port, 'worker', 'w');
    const b: StartedBroker = await world.broker(OPTS);
    const ours = await decisions(b.broker.natsPort!, 'worker', 'w');
    const rows = MATRIX.map(([p, q, expected], i) => `${p} ${q || '(none)'}: expected ${expected}, nats-server ${theirs[i]}, hopbus ${ours[i]}`);
    expect(ours, rows.join('\n')).toEqual(theirs);
    expect(ours).toEqual(MATRIX.map((c) => c[2]));
  });
});
