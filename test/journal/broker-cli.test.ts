/**
 * `hopbus broker --journal DIR --record PATTERN` as an operator runs it: it records what is
 * published on the patterns, says so on standard error, shows the figures at /varz and
 * /metrics, and writes what it recorded when stopped by SIGTERM; the two flags need each
 * other.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openJournal } from '../../journal/index.js';
import { cli, run, sdk, start, useCli, waitFor, READY } from '../cli/harness.js';

useCli();

describe('hopbus broker --journal DIR --record PATTERN', () => {
  it('records the patterns, shows the figures over HTTP, and has written every record when stopped', async () => {
    const dir = path.join(cli.tmp, 'j1');
    const p = start(['broker', '--port', '0', '--no-nats', '--http-port', '0', '--journal', dir, '--record', 'md.>', '--record', 'fx.*']);
    const url = (await waitFor(p, READY, 'stderr'))[1]!.trim().split(/\s+/)[0]!;
    expect(p.out.stderr).toMatch(/^recording: md\.> fx\.\* into .*j1 \(from seq 1\)$/m);
    const http = (await waitFor(p, /^monitoring: (http:\/\/\S+)\//m, 'stderr'))[1]!;
    const bus = await sdk(url);
    for (let i = 0; i < 100; i++) bus.publish(i % 2 === 0 ? `md.S${i}` : 'other', `m${i}`);
    bus.publish('fx.EURUSD', 'fx');
    await bus.flush();
    const v = (await (await fetch(`${http}/varz`)).json()) as { journal: { matched: number; appended: number; dropped: number; ioErrors: number } };
    expect(v.journal).toMatchObject({ matched: 51, appended: 51, dropped: 0, ioErrors: 0 });
    const metrics = await (await fetch(`${http}/metrics`)).text();
    expect(metrics).toMatch(/^hopbus_journal_records_appended_total 51$/m);
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
    const got: string[] = [];
    openJournal(dir).forEach({}, (r) => void got.push(`${r.seq}:${r.subject()}`));
    expect(got).toEqual([...Array.from({ length: 50 }, (_, i) => `${i + 1}:md.S${i * 2}`), '51:fx.EURUSD']);
  });

  it('takes the journal from the --config file; --journal and --record override its dir and subjects, keeping its other keys', async () => {
    const file = path.join(cli.tmp, 'journal.json');
    const fromFile = path.join(cli.tmp, 'j-file');
    fs.writeFileSync(file, JSON.stringify({ journal: { dir: fromFile, subjects: ['fx.>'], fsync: 'always' } }));
    const a = start(['broker', '--port', '0', '--no-nats', '--config', file]);
    await waitFor(a, READY, 'stderr');
    expect(a.out.stderr).toMatch(/^recording: fx\.> into .*j-file \(from seq 1\)$/m);
    const override = path.join(cli.tmp, 'j-flag');
    const b = start(['broker', '--port', '0', '--no-nats', '--config', file, '--journal', override, '--record', 'md.>']);
    await waitFor(b, READY, 'stderr');
    expect(b.out.stderr).toMatch(/^recording: md\.> into .*j-flag \(from seq 1\)$/m);
    await waitFor(b, /"msg":"journal recording"/);
    expect(b.out.stdout).toMatch(/"msg":"journal recording"/);
    expect(JSON.parse(b.out.stdout.split('\n').find((l) => l.includes('"journal recording"'))!)).toMatchObject({ fsync: 'always', subjects: ['md.>'] });
    const bad = path.join(cli.tmp, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ journal: { dir: fromFile, subjects: ['md.>'], sync: true } }));
    const r = await run(['broker', '--port', '0', '--no-nats', '--config', bad], { killOn: READY });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('"journal" has an unknown key "sync"');
  });

  it('--record without --journal, and --journal without --record, are usage errors', async () => {
    const a = await run(['broker', '--port', '0', '--no-nats', '--record', 'md.>'], { killOn: READY });
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('--record needs --journal DIR');
    const b = await run(['broker', '--port', '0', '--no-nats', '--journal', path.join(cli.tmp, 'j2')], { killOn: READY });
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('--journal needs at least one --record PATTERN');
    const help = await run(['broker', '--help']);
    expect(help.stdout).toMatch(/--journal DIR .*\[HOPBUS_JOURNAL\]/);
    expect(help.stdout).toMatch(/--record PATTERN .*\(repeatable\) \[HOPBUS_RECORD\]/);
  });
});
