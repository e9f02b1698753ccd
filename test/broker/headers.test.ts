/**
 * Message headers are a map of token names to strings without NUL or CR (LF separates
 * the values of a multi-valued header): publish()
 * refuses anything else with OptionsError (nothing is sent), and the broker drops a PUB
 * whose headers block on the wire is anything else, telling the publisher (non-fatal
 * ERR PROTOCOL), so subscribers only ever see valid headers.
 */
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { OptionsError, type Msg } from '../../client/index.js';
import { wireHeadersProblem } from '../../broker/session.js';
import { ERR, OP, pubFrame, subFrame, useWorld } from '../kit/index.js';

const w = useWorld();
const packr = new Packr({ useRecords: false });

describe('headers at publish()', () => {
  it('refuses arrays, non-string values, names that are not tokens and values with NUL or CR, sending nothing; valid ones arrive as sent', async () => {
    const b = await w.broker();
    const bus = await w.connect(b.url);
    const got: Msg[] = [];
    bus.subscribe('h', (m) => got.push(m));
    await bus.flush();
    const bad: Array<[unknown, RegExp]> = [
      [['a', 'b'], /plain object of strings/],
      [new Map([['a', 'b']]), /plain object of strings/],
      [{ n: 1 }, /header "n" must be a string, got number/],
      [{ list: ['x'] }, /header "list" must be a string, got an array/],
      [{ 'bad name': 'x' }, /header name "bad name" is not a token/],
      [{ 'x:y': 'x' }, /is not a token/],
      [{ '': 'x' }, /is not a token/],
      [{ v: 'a\r\nInjected: 1' }, /must not contain NUL or CR/],
      [{ v: 'a\0b' }, /must not contain NUL or CR/],
    ];
    for (const [headers, why] of bad) {
      expect(() => bus.publish('h', 'x', { headers } as never), JSON.stringify(headers)).toThrow(OptionsError);
      expect(() => bus.publish('h', 'x', { headers } as never)).toThrow(why);
      await expect(bus.request('h', 'x', { headers } as never)).rejects.toThrow(why);
    }
    bus.publish('h', 'ok', { headers: { 'Msg-Id': 'é 1', trace: '', multi: 'a\nb' } });
    await bus.flush();
    expect(got.map((m) => m.headers)).toEqual([{ 'Msg-Id': 'é 1', trace: '', multi: 'a\nb' }]);
  });
});

describe('headers on the wire, at the broker', () => {
  it('drops a PUB with a headers block that is not a valid map, with a non-fatal ERR; the connection and valid PUBs go on', async () => {
    const b = await w.broker();
    const sub = await w.raw(b);
    await sub.handshake();
    sub.send(subFrame(1, 'h'));
    await sub.roundTrip();
    const raw = await w.raw(b);
    await raw.handshake();
    const blocks: Array<[Buffer, RegExp]> = [
      [Buffer.from(packr.pack(['a'])), /not a msgpack map/],
      [Buffer.from(packr.pack({ a: 1 })), /a header value is not a string/],
      [Buffer.from(packr.pack({ a: ['x'] })), /a header value is not a string/],
      [Buffer.from(packr.pack({ 'a b': 'x' })), /a header name is not a token/],
      [Buffer.from(packr.pack({ a: 'x\ry' })), /contains NUL or CR/],
      [Buffer.concat([Buffer.from(packr.pack({ a: 'x' })), Buffer.from([0xc0])]), /bytes after the map/],
      [Buffer.from(packr.pack({ a: 'xyz' })).subarray(0, 4), /cut short/],
    ];
    for (const [block] of blocks) raw.send(pubFrame('h', 'bad', { headers: block }));
    raw.send(pubFrame('h', 'good', { headers: Buffer.from(packr.pack({ a: 'x' })) }));
    await raw.roundTrip();
    const errs = raw.errors();
    expect(errs).toHaveLength(blocks.length);
    blocks.forEach(([, why], i) => {
      expect(errs[i]!.code).toBe(ERR.PROTOCOL);
      expect(errs[i]!.flags & 1).toBe(0);
      expect(errs[i]!.text).toMatch(why);
      expect(errs[i]!.text).toMatch(/^invalid headers: .*; the message was dropped$/);
    });
    await sub.roundTrip();
    expect(sub.frames.filter((f) => f.op === OP.MSG).map((f) => f.text)).toEqual(['good']);
  });

  it('wireHeadersProblem accepts what the SDK encodes: map16 and str8/str16 forms included', () => {
    const many: Record<string, string> = {};
    for (let i = 0; i < 20; i++) many[`k${i}`] = 'v'.repeat(i * 20);
    many.long = 'x'.repeat(70_000);
    for (const h of [{}, { a: 'b' }, many]) {
      const block = Buffer.from(packr.pack(h));
      expect(wireHeadersProblem(block, 0, block.length)).toBeNull();
    }
  });
});
