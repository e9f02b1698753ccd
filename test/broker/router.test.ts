/**
 * The router's contract, with no socket: which session gets which bytes. Sessions
 * here are in-memory fakes of the Subscriber/Publisher interfaces (broker/subscription.ts).
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../runtime/clock.js';
import { newCounters, type BrokerCounters } from '../../broker/counters.js';
import { PublisherGate } from '../../broker/gate.js';
import { Limiter } from '../../broker/ratelimit.js';
import type { Route } from '../../broker/route.js';
import { Router, type RouterOptions } from '../../broker/router.js';
import { Subscription, type DirectPublisher, type Publisher, type Subscriber } from '../../broker/subscription.js';
import { msgSize, writeMsgHeader } from '../../transports/protocol/index.js';

// Wire values (docs/PROTOCOL.md), restated so the test reads the layout independently.
const PUB = 0x10;
const MSG = 0x11;
const FLAG_REQUEST = 0x02;
const FLAG_NO_RESPONDERS = 0x04;
const DISCONNECT = 1;
const DROP_OLDEST = 2;
const ERR_MAX_PAYLOAD = 4;
const ERR_BAD_SUBJECT = 5;
const ERR_RATE_LIMITED = 14;

interface Got {
  op: number;
  flags: number;
  sid: number;
  subject: string;
  payload: string;
  subs: number[];
  policy: number;
  from: Publisher | null;
}

class FakeSession implements Subscriber, Publisher {
  open = true;
  direct: DirectPublisher | null = null;
  report = null;
  readonly got: Got[] = [];
  readonly errors: Array<[number, string]> = [];
  readonly fatals: Array<[number, string]> = [];
  readonly subs = new Map<number, Subscription>();
  readonly gate: PublisherGate;
  paused = 0;

  constructor(
    readonly id: number,
    private readonly router: Router,
    counters: BrokerCounters,
    clock: FakeClock,
  ) {
    this.gate = new PublisherGate(
      { link: { pause: () => this.paused++, resume: () => this.paused-- }, error: (c, t) => this.errors.push([c, t]) },
      counters,
      clock,
    );
  }

  sub(sid: number, pattern: string, queue = '', policy = DISCONNECT): Subscription {
    const s = new Subscription(this, sid, pattern, queue, policy);
    this.router.subscribe(s);
    this.subs.set(sid, s);
    return s;
  }

  deliver(buf: Buffer, off: number, len: number, sid: number, subject: string, subs: readonly Subscription[], policy: number, from: Publisher | null): void {
    const subjectLen = buf.readUInt16LE(off + 12);
    const replyLen = buf.readUInt16LE(off + 14);
    const headersLen = buf.readUInt32LE(off + 16);
    const p = off + 20 + subjectLen + replyLen + headersLen;
    this.got.push({
      op: buf[off + 4]!,
      flags: buf[off + 5]!,
      // A queue delivery carries its sid as an argument: the receiver patches its own copy.
      sid: sid !== 0 ? sid : buf.readUInt32LE(off + 8),
      subject,
      payload: buf.toString('utf8', p, off + len),
      subs: subs.map((s) => s.sid).sort((x, y) => x - y),
      policy,
      from,
    });
  }

  removeSub(sub: Subscription): void {
    if (this.subs.delete(sub.sid)) this.router.unsubscribe(sub);
  }

  error(code: number, text: string): void {
    this.errors.push([code, text]);
  }

  fatal(code: number, text: string): void {
    this.fatals.push([code, text]);
    this.open = false;
  }

  block(): void {}
  unblock(): void {}
}

/** A PUB frame as a client writes it (sid carries a direct publisher's interest seq). */
function pub(subject: string, payload: string, opts: { reply?: string; flags?: number; sid?: number } = {}): Buffer {
  const reply = opts.reply ?? '';
  const s = Buffer.byteLength(subject);
  const r = Buffer.byteLength(reply);
  const p = Buffer.byteLength(payload);
  const total = msgSize(s, r, 0, p, false);
  const buf = Buffer.alloc(total);
  let at = writeMsgHeader(buf, 0, total, PUB, opts.flags ?? 0, 0, opts.sid ?? 0, s, r, 0);
  at += buf.write(subject, at);
  at += buf.write(reply, at);
  buf.write(payload, at);
  return buf;
}

function world(options: Partial<RouterOptions> = {}) {
  const counters = newCounters();
  const clock = new FakeClock();
  const router = new Router({ maxPayload: 1024, maxHeaders: 256, matchCacheSize: 64, defaultPolicy: DISCONNECT, subjectLimits: [], ...options }, counters);
  let ids = 1;
  const session = () => new FakeSession(ids++, router, counters, clock);
  const publish = (from: FakeSession, frame: Buffer) => router.publish(from, frame, 0, frame.length);
  return { counters, clock, router, session, publish };
}

describe('Router: fanout', () => {
  it('a PUB reaches each session with a matching subscription once, as a MSG with sid 0, however many of its subscriptions match', () => {
    const { router, session, publish, counters } = world();
    const a = session();
    const b = session();
    const p = session();
    a.sub(1, 'orders.*');
    a.sub(2, 'orders.>');
    b.sub(7, 'orders.new');
    session().sub(1, 'other');
    expect(publish(p, pub('orders.new', 'x'))).toBe(true);
    expect(a.got).toEqual([{ op: MSG, flags: 0, sid: 0, subject: 'orders.new', payload: 'x', subs: [1, 2], policy: DISCONNECT, from: p }]);
    expect(b.got.map((g) => [g.op, g.subs, g.payload])).toEqual([[MSG, [7], 'x']]);
    expect(counters).toMatchObject({ msgsIn: 1, msgsOut: 2, unrouted: 0 });
    expect(router.hasSubscribers('orders.new')).toBe(true);
    expect(router.hasSubscribers('orders')).toBe(false);
  });

  it("the least lossy policy among a session's matching subscriptions governs its copy", () => {
    const { session, publish } = world();
    const a = session();
    a.sub(1, 'x', '', DROP_OLDEST);
    a.sub(2, '>', '', DISCONNECT);
    publish(session(), pub('x', ''));
    expect(a.got[0]!.policy).toBe(DISCONNECT);
  });

  it('a message nobody subscribes to is counted as unrouted and goes nowhere', () => {
    const { session, publish, counters } = world();
    const a = session();
    a.sub(1, 'a');
    expect(publish(session(), pub('b', 'x'))).toBe(true);
    expect(a.got).toEqual([]);
    expect(counters).toMatchObject({ msgsIn: 1, msgsOut: 0, unrouted: 1 });
  });

  it('sessions that are closing are skipped', () => {
    const { session, publish } = world();
    const a = session();
    a.sub(1, 'a');
    a.open = false;
    publish(session(), pub('a', 'x'));
    expect(a.got).toEqual([]);
  });

  it('a request nobody subscribes to is answered at once with a no-responders MSG on its reply subject', () => {
    const { session, publish } = world();
    const requester = session();
    requester.sub(9, '_INBOX.r1');
    publish(requester, pub('service', 'q', { reply: '_INBOX.r1', flags: FLAG_REQUEST }));
    expect(requester.got.map((g) => [g.op, g.flags, g.subject, g.subs, g.payload])).toEqual([[MSG, FLAG_NO_RESPONDERS, '_INBOX.r1', [9], '']]);
  });

  it('a plain publish with a reply subject and no subscribers gets no no-responders MSG', () => {
    const { session, publish } = world();
    const p = session();
    p.sub(9, '_INBOX.r1');
    publish(p, pub('service', 'q', { reply: '_INBOX.r1' }));
    expect(p.got).toEqual([]);
  });

  it('counts each fanout once, however many sessions receive it', () => {
    const { router, session, publish } = world();
    session().sub(1, 'a');
    session().sub(1, 'a');
    const p = session();
    publish(p, pub('a', ''));
    publish(p, pub('nobody', ''));
    publish(p, pub('a', ''));
    expect(router.fanouts).toBe(2);
  });
});

describe('Router: queue groups', () => {
  it("each message goes to one member of a group, in turn, and the group's cursor survives route rebuilds", () => {
    const { session, publish } = world();
    const members = [session(), session(), session()];
    members.forEach((m) => m.sub(5, 'work', 'q'));
    const p = session();
    for (let i = 0; i < 3; i++) publish(p, pub('work', String(i)));
    // A subscription coming rebuilds the route; the rotation goes on where it was.
    session().sub(1, 'unrelated.>');
    members[0]!.sub(6, 'work.extra');
    for (let i = 3; i < 6; i++) publish(p, pub('work', String(i)));
    expect(members.map((m) => m.got.map((g) => g.payload))).toEqual([
      ['0', '3'],
      ['1', '4'],
      ['2', '5'],
    ]);
    expect(members[1]!.got[0]).toMatchObject({ sid: 5, subs: [5] });
  });

  it('a member whose session is closing is passed over for the next', () => {
    const { session, publish } = world();
    const [a, b] = [session(), session()];
    a.sub(1, 'w', 'q');
    b.sub(1, 'w', 'q');
    a.open = false;
    publish(session(), pub('w', '1'));
    publish(session(), pub('w', '2'));
    expect(a.got).toEqual([]);
    expect(b.got.map((g) => g.payload)).toEqual(['1', '2']);
  });

  it('a group and plain subscribers each get the message', () => {
    const { session, publish, counters } = world();
    const plain = session();
    const member = session();
    plain.sub(1, 'w');
    member.sub(2, 'w', 'q');
    publish(session(), pub('w', 'x'));
    expect([plain.got.length, member.got.length]).toEqual([1, 1]);
    expect(counters.msgsOut).toBe(2);
  });
});

describe('Router: auto-unsubscribe', () => {
  it('a subscription limited to N more messages gets N, then is removed by its session', () => {
    const { router, session, publish } = world();
    const a = session();
    const s = a.sub(1, 'tick');
    router.limit(s, 2);
    const p = session();
    for (let i = 0; i < 4; i++) publish(p, pub('tick', String(i)));
    expect(a.got.map((g) => g.payload)).toEqual(['0', '1']);
    expect(a.subs.size).toBe(0);
    expect(router.hasSubscribers('tick')).toBe(false);
  });

  it('a limited queue member is removed after its own deliveries', () => {
    const { router, session, publish } = world();
    const [a, b] = [session(), session()];
    router.limit(a.sub(1, 'w', 'q'), 1);
    b.sub(1, 'w', 'q');
    for (let i = 0; i < 4; i++) publish(session(), pub('w', String(i)));
    expect(a.got.map((g) => g.payload)).toEqual(['0']);
    expect(b.got.map((g) => g.payload)).toEqual(['1', '2', '3']);
  });

  it("unsubscribeAll removes a closing session's subscriptions in one batch", () => {
    const { router, session } = world();
    const a = session();
    a.sub(1, 'a');
    a.sub(2, 'b.>');
    const seen: number[] = [];
    router.unsubscribeAll(a.subs.values(), (s) => seen.push(s.sid));
    expect(seen).toEqual([1, 2]);
    expect(router.tree.size).toBe(0);
  });
});

describe('Router: refusals', () => {
  it('a payload over maxPayload is fatal for the publisher and routed nowhere', () => {
    const { session, publish } = world({ maxPayload: 4 });
    const a = session();
    a.sub(1, 'a');
    const p = session();
    expect(publish(p, pub('a', '12345'))).toBe(false);
    expect(p.fatals.map((f) => f[0])).toEqual([ERR_MAX_PAYLOAD]);
    expect(a.got).toEqual([]);
  });

  it('an invalid subject or reply subject is a non-fatal BAD_SUBJECT, and the message is dropped', () => {
    const { session, publish } = world();
    const a = session();
    a.sub(1, '>');
    const p = session();
    expect(publish(p, pub('a..b', 'x'))).toBe(false);
    expect(publish(p, pub('a.*', 'x'))).toBe(false);
    expect(publish(p, pub('ok', 'x', { reply: 'bad reply' }))).toBe(false);
    expect(p.errors.map((e) => e[0])).toEqual([ERR_BAD_SUBJECT, ERR_BAD_SUBJECT, ERR_BAD_SUBJECT]);
    expect(p.fatals).toEqual([]);
    expect(a.got).toEqual([]);
    // The subject cache holds only valid subjects: the same bad subject is refused again.
    expect(publish(p, pub('a..b', 'x'))).toBe(false);
  });

  it('a subject rate limit with action refuse refuses what is over it, for every publisher', () => {
    const limiter = new Limiter({ msgsPerSec: 2, burstMsgs: 2, action: 'refuse' }, 1000);
    const { session, publish, counters } = world({ subjectLimits: [{ pattern: 'limited.>', limiter }] });
    const a = session();
    a.sub(1, '>');
    const [p, q] = [session(), session()];
    expect([publish(p, pub('limited.x', '1')), publish(q, pub('limited.y', '2')), publish(p, pub('limited.x', '3'))]).toEqual([true, true, false]);
    expect(publish(p, pub('free', '4'))).toBe(true);
    expect(a.got.map((g) => g.payload)).toEqual(['1', '2', '4']);
    expect(counters.rateRefused).toBe(1);
    expect(p.errors.map((e) => e[0])).toEqual([ERR_RATE_LIMITED]);
  });
});

describe("Router: the broker's own messages and taps", () => {
  it('publishInternal sends a msgpack MSG to matching subscribers, and nothing when there are none', () => {
    const { router, session } = world();
    const a = session();
    a.sub(3, '$SYS.stats');
    router.publishInternal('$SYS.stats', Buffer.from('hi'));
    router.publishInternal('$SYS.none', Buffer.from('hi'));
    expect(a.got.map((g) => [g.op, g.subject, g.payload, g.from])).toEqual([[MSG, '$SYS.stats', 'hi', null]]);
  });

  it('the tap sees every routed publish, and $-subjects as system messages', () => {
    const { router, session, publish } = world();
    const seen: string[] = [];
    router.tap = {
      enabled: true,
      onPublish: (route: Route) => seen.push(`pub ${route.subject}`),
      onSystem: (_from, subject) => seen.push(`sys ${subject}`),
    };
    const p = session();
    publish(p, pub('a', ''));
    publish(p, pub('$SYS.report.1', ''));
    expect(seen).toEqual(['pub a', 'pub $SYS.report.1', 'sys $SYS.report.1']);
  });

  it('an exported message with no local subscribers is neither unrouted nor answered with no-responders', () => {
    const { router, session, publish, counters } = world();
    const out: string[] = [];
    router.exporter = { export: (buf, off, _len, subject) => (out.push(`${buf[off + 4]} ${subject}`), true) };
    const p = session();
    p.sub(9, '_INBOX.1');
    publish(p, pub('remote', '', { reply: '_INBOX.1', flags: FLAG_REQUEST }));
    // Exported as the PUB it was: the bridge makes its own MSG.
    expect(out).toEqual([`${PUB} remote`]);
    expect(counters.unrouted).toBe(0);
    expect(p.got).toEqual([]);
  });

  it('routeImported delivers to local subscribers without exporting again', () => {
    const { router, session, counters } = world();
    let exported = 0;
    router.exporter = { export: () => (exported++, true) };
    const a = session();
    a.sub(1, 'in.>');
    const frame = pub('in.x', 'm');
    frame[4] = MSG;
    router.routeImported(frame, 0, frame.length, 'in.x', -1);
    expect(a.got.map((g) => [g.subject, g.payload, g.from])).toEqual([['in.x', 'm', null]]);
    expect(exported).toBe(0);
    expect(counters.msgsIn).toBe(1);
  });
});

describe('Router: direct publishers', () => {
  it('skips the peers a direct publisher serves itself, once it knew their subscription', () => {
    const { session, publish } = world();
    const peer = session();
    const other = session();
    const p = session();
    const s = peer.sub(1, 'd');
    s.servedSeq = 5;
    other.sub(1, 'd');
    p.direct = { acked: new Set<Subscriber>([peer]) };
    // Interest seq 4: the publisher had not applied the subscription yet, so the broker delivers.
    publish(p, pub('d', 'old', { sid: 4 }));
    publish(p, pub('d', 'new', { sid: 5 }));
    expect(peer.got.map((g) => g.payload)).toEqual(['old']);
    expect(other.got.map((g) => g.payload)).toEqual(['old', 'new']);
  });
});
