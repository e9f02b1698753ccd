import { describe, expect, it } from 'vitest';
import { ensurePackages } from '../../bench/peers/install.js';

describe('ensurePackages', () => {
  it('reports a missing package as not installed, with the reason, when it may not install', () => {
    const r = ensurePackages(['hopbus-test-no-such-package'], false);
    expect(r.installed).toEqual([]);
    expect(r.present).toEqual([]);
    expect(r.failed['hopbus-test-no-such-package']).toMatch(/not installed|not a Debian-like system/);
    expect(r.commands).toEqual([]);
  });
});
