import { describe, expect, it } from 'vitest';
import { ConnectionError, NoRespondersError, OptionsError, TimeoutError, type Msg } from '../../client/index.js';
import { guard, useWorld } from '../kit/index.js';

const w = useWorld();

async function setup() {
  const b = await w.broker();
  const responder = await w.connect(b.url, { name: 'responder' });
  const requester = await w.connect(b.url, { name: 'requester' });
  return { b, responder, requester };
}

describe('request/reply', () => {
  it('a request resolves with the reply, which msg.respond sends to the reply subject', async () => {
    const { responder, requester } = await setup();
    responder.subscribe('math.double', (m) => m.respond({ result: (m.value as { n: number }).n * 2 }));
    await responder.flush();
    const reply = await requester.request('math.double', { n: 21 });
    expect(reply.value).toEqual({ result: 42 });
  });

  it('the responder sees a reply subject, the request payload and headers', async () => {
    const { responder, requester } = await setup();
    let seen: Msg | undefined;
    responder.subscribe('echo', (m) => {
      seen = m;
      m.respond(m.string(), { headers: { from: 'responder' } });
    });
    await responder.flush();
    const reply = await requester.request('echo', 'ping', { headers: { trace: 't1' } });
    expect(seen!.reply).not.toBe('');
    expect(seen!.headers).toEqual({ trace: 't1' });
    expect(reply.string()).toBe('ping');
    expect(reply.headers).toEqual({ from: 'responder' });
  });

  it('publish with a reply subject lets any subscriber answer on it', async () => {
    const { responder, requester } = await setup();
    responder.subscribe('svc', (m) => m.respond(`re: ${m.string()}`));
    await responder.flush();
    const answers: string[] = [];
    requester.subscribe('my.inbox', (m) => answers.push(m.string()));
    requester.publish('svc', 'hello', { reply: 'my.inbox' });
    await requester.flush();
    await responder.flush();
    await requester.flush();
    expect(answers).toEqual(['re: hello']);
  });

  it('msg.respond on a message without a reply subject throws', async () => {
    const { responder, requester } = await setup();
    let error: unknown;
    responder.subscribe('plain', (m) => {
      try {
        m.respond('x');
      } catch (e) {
        error = e;
      }
    });
    await responder.flush();
    requester.publish('plain', 'no reply wanted');
    await requester.flush();
    await responder.flush();
    expect(error).toBeInstanceOf(Error);
    expect(String(error)).toMatch(/no reply subject/);
  });

  it('a request to a subject nobody subscribes to rejects at once with NoRespondersError, long before its timeout', async () => {
    const { requester } = await setup();
    const p = requester.request('nobody.home', 'x', { timeoutMs: 10_000 });
    const err = await Promise.race([p, guard(5_000, 'no-responders answer')]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoRespondersError);
    expect((err as NoRespondersError).code).toBe('NO_RESPONDERS');
    expect((err as NoRespondersError).subject).toBe('nobody.home');
  });

  it('a request whose responder never answers rejects with TimeoutError', async () => {
    const { responder, requester } = await setup();
    responder.subscribe('silent', () => {});
    await responder.flush();
    const err = await requester.request('silent', 'x', { timeoutMs: 150 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).code).toBe('TIMEOUT');
  });

  it('a late reply after the timeout is ignored', async () => {
    const { responder, requester } = await setup();
    const held: Msg[] = [];
    responder.subscribe('late', (m) => held.push(m));
    await responder.flush();
    await expect(requester.request('late', 'x', { timeoutMs: 100 })).rejects.toBeInstanceOf(TimeoutError);
    held[0]!.respond('too late');
    await responder.flush();
    await requester.flush();
    // The next request is answered with its own reply, not the stale one.
    responder.subscribe('fast', (m) => m.respond('fresh'));
    await responder.flush();
    expect((await requester.request('fast')).string()).toBe('fresh');
  });

  it('many concurrent requests each resolve to their own reply', async () => {
    const { responder, requester } = await setup();
    responder.subscribe('sq', (m) => {
      const n = m.value as number;
      m.respond(n * n);
    });
    await responder.flush();
    const ns = [...Array(500).keys()];
    const replies = await Promise.all(ns.map((n) => requester.request('sq', n)));
    expect(replies.map((r) => r.value)).toEqual(ns.map((n) => n * n));
  });

  it('requests served by a queue group of responders each get exactly one reply', async () => {
    const { b, requester } = await setup();
    const served = [0, 0, 0];
    for (let i = 0; i < 3; i++) {
      const r = await w.connect(b.url);
      r.subscribe(
        'work',
        (m) => {
          served[i]!++;
          m.respond(`${i}:${m.string()}`);
        },
        { queue: 'workers' },
      );
      await r.flush();
    }
    const replies = await Promise.all([...Array(30).keys()].map((n) => requester.request('work', String(n))));
    expect(replies.map((r) => r.string().split(':')[1])).toEqual([...Array(30).keys()].map(String));
    expect(served).toEqual([10, 10, 10]);
  });

  it('the first of several replies resolves the request', async () => {
    const { b, requester } = await setup();
    for (const name of ['a', 'b']) {
      const r = await w.connect(b.url);
      r.subscribe('both', (m) => m.respond(name));
      await r.flush();
    }
    const reply = await requester.request('both');
    expect(['a', 'b']).toContain(reply.string());
  });

  it('a request with an unknown option throws OptionsError at once', async () => {
    const { requester } = await setup();
    expect(() => requester.request('x', 'y', { timeout: 5 } as never)).toThrow(OptionsError);
  });

  it('a request on a closed connection throws ConnectionError at once', async () => {
    const { requester } = await setup();
    await requester.close();
    expect(() => requester.request('x')).toThrow(ConnectionError);
  });
});
