import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChannelConfigError, ChannelMap, fnv1a32 } from '../../topics/channels.js';
import { SubjectTree } from '../../topics/index.js';

describe('ChannelMap: subject to channel', () => {
  it('one channel carries everything', () => {
    const m = new ChannelMap({ count: 1 });
    expect(m.channelOf('a.b.c')).toBe(0);
    expect(m.channelsFor('>')).toEqual([0]);
  });

  it('the longest matching prefix rule wins, and a prefix covers the subject equal to it', () => {
    const m = new ChannelMap({
      count: 4,
      rules: [
        { prefix: 'md', channel: 1 },
        { prefix: 'md.fx', channel: 2 },
        { prefix: 'md.fx.EURUSD', channel: 3 },
      ],
    });
    expect(m.channelOf('md.eq.IBM')).toBe(1);
    expect(m.channelOf('md')).toBe(1);
    expect(m.channelOf('md.fx')).toBe(2);
    expect(m.channelOf('md.fx.GBPUSD.bid')).toBe(2);
    expect(m.channelOf('md.fx.EURUSD.bid')).toBe(3);
    expect(m.channelOf('md.fxx.GBPUSD')).toBe(1); // whole tokens, not characters
  });

  it('other subjects hash their first hashTokens tokens with FNV-1a over UTF-8 (documented so other clients can compute it)', () => {
    const m = new ChannelMap({ count: 8 });
    expect(m.channelOf('orders.desk7.new')).toBe(fnv1a32('orders.desk7') % 8);
    expect(m.channelOf('orders.desk7.new')).toBe(m.channelOf('orders.desk7.cancel'));
    expect(m.channelOf('x')).toBe(fnv1a32('x') % 8);
    const whole = new ChannelMap({ count: 8, hashTokens: 0 });
    expect(whole.channelOf('orders.desk7.new')).toBe(fnv1a32('orders.desk7.new') % 8);
    // FNV-1a reference values (32-bit): "" and "a".
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    // UTF-8 bytes, not UTF-16 units: é is c3 a9.
    expect(fnv1a32('é')).toBe(Math.imul(Math.imul(0x811c9dc5 ^ 0xc3, 0x01000193) ^ 0xa9, 0x01000193) >>> 0);
  });

  it('the hash spreads over the fallback channels only', () => {
    const m = new ChannelMap({ count: 4, fallback: [2, 3], rules: [{ prefix: 'ctl', channel: 0 }] });
    for (let i = 0; i < 200; i++) expect([2, 3]).toContain(m.channelOf(`s${i}.x`));
    expect(m.channelsFor('>')).toEqual([0, 2, 3]);
  });

  it('refuses bad configurations with a named problem', () => {
    expect(() => new ChannelMap({ count: 0 })).toThrow(ChannelConfigError);
    expect(() => new ChannelMap({ count: 2, rules: [{ prefix: 'md.*', channel: 0 }] })).toThrow(/literal subject/);
    expect(() => new ChannelMap({ count: 2, rules: [{ prefix: 'md', channel: 2 }] })).toThrow(/index from 0 to 1/);
    expect(
      () =>
        new ChannelMap({
          count: 2,
          rules: [
            { prefix: 'md', channel: 0 },
            { prefix: 'md', channel: 1 },
          ],
        }),
    ).toThrow(/twice/);
    expect(() => new ChannelMap({ count: 2, fallback: [] })).toThrow(/at least one/);
    expect(() => new ChannelMap({ count: 2, hashTokens: -1 })).toThrow(/hashTokens/);
  });
});

describe('ChannelMap: channels a subscription needs', () => {
  const m = new ChannelMap({
    count: 6,
    rules: [
      { prefix: 'md', channel: 0 },
      { prefix: 'md.fx', channel: 1 },
      { prefix: 'news', channel: 2 },
    ],
    fallback: [3, 4, 5],
  });

  it("a literal pattern needs exactly its subject's channel", () => {
    expect(m.channelsFor('md.fx.EURUSD')).toEqual([1]);
    expect(m.channelsFor('orders.a.b')).toEqual([m.channelOf('orders.a.b')]);
  });

  it('a wildcard inside one rule needs that rule and the longer rules it overlaps, never the hash', () => {
    expect(m.channelsFor('md.fx.*')).toEqual([1]);
    expect(m.channelsFor('md.>')).toEqual([0, 1]);
    expect(m.channelsFor('md.*.IBM')).toEqual([0, 1]);
    expect(m.channelsFor('news.>')).toEqual([2]);
  });

  it('wildcards after the hashed tokens need one hash channel; before them, all of them', () => {
    expect(m.channelsFor('orders.desk7.*')).toEqual([m.channelOf('orders.desk7.new')]);
    expect(m.channelsFor('orders.*.new')).toEqual([3, 4, 5]);
    // Over-approximation, documented: 'md' overlaps, though its only match md.fx belongs to the longer rule.
    expect(m.channelsFor('*.fx')).toEqual([0, 1, 2, 3, 4, 5]); // news.fx is on 2
    expect(m.channelsFor('>')).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('property: the channel of every subject a pattern matches is among channelsFor(pattern)', () => {
    const tok = fc.constantFrom('md', 'fx', 'news', 'a', 'b', 'EURUSD', 'x');
    const subject = fc.array(tok, { minLength: 1, maxLength: 5 }).map((t) => t.join('.'));
    const ptok = fc.constantFrom('md', 'fx', 'news', 'a', 'b', 'EURUSD', 'x', '*', '*');
    const pattern = fc.tuple(fc.array(ptok, { minLength: 1, maxLength: 4 }), fc.boolean()).map(([t, gt]) => (gt ? [...t, '>'] : t).join('.'));
    const maps = [
      m,
      new ChannelMap({ count: 5 }),
      new ChannelMap({ count: 3, hashTokens: 0, rules: [{ prefix: 'md.fx', channel: 2 }] }),
      new ChannelMap({ count: 4, hashTokens: 1 }),
    ];
    fc.assert(
      fc.property(pattern, fc.array(subject, { minLength: 1, maxLength: 20 }), (p, subjects) => {
        for (const map of maps) {
          const need = map.channelsFor(p);
          for (const s of subjects) if (SubjectTree.matches(p, s)) expect(need).toContain(map.channelOf(s));
        }
      }),
      { numRuns: 500 },
    );
  });
});
