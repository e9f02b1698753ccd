import { describe, expect, it } from 'vitest';
import { OptionsError } from '../../runtime/errors.js';
import { Ring } from '../../runtime/ring.js';

/** The entries of a ring, oldest first, read through at(). */
const contents = <T>(r: Ring<T>): T[] => Array.from({ length: r.length }, (_, i) => r.at(i)!);

describe('Ring', () => {
  it('is a FIFO: shift returns entries in the order they were pushed', () => {
    const r = new Ring<number>();
    for (let i = 0; i < 5; i++) r.push(i);
    expect(r.length).toBe(5);
    expect([r.shift(), r.shift(), r.shift()]).toEqual([0, 1, 2]);
    expect(r.length).toBe(2);
  });

  it('unshift puts an entry back at the head, so it comes out next', () => {
    const r = new Ring<string>();
    r.push('b');
    r.push('c');
    r.unshift('a');
    expect(contents(r)).toEqual(['a', 'b', 'c']);
    expect(r.shift()).toBe('a');
  });

  it('peek and at read without removing; outside 0..length-1 they give undefined', () => {
    const r = new Ring<number>();
    expect(r.peek()).toBeUndefined();
    r.push(7);
    r.push(8);
    expect(r.peek()).toBe(7);
    expect(r.at(1)).toBe(8);
    expect(r.at(2)).toBeUndefined();
    expect(r.at(-1)).toBeUndefined();
    expect(r.length).toBe(2);
  });

  it('shift on an empty ring gives undefined and leaves it usable', () => {
    const r = new Ring<number>();
    expect(r.shift()).toBeUndefined();
    expect(r.length).toBe(0);
    r.push(1);
    expect(r.shift()).toBe(1);
  });

  it('allocates nothing until the first push, then grows by doubling from its initial capacity', () => {
    const r = new Ring<number>(Infinity, 4);
    expect(r.capacity).toBe(0);
    const seen: number[] = [];
    for (let i = 0; i < 20; i++) {
      r.push(i);
      if (seen.at(-1) !== r.capacity) seen.push(r.capacity);
    }
    expect(seen).toEqual([4, 8, 16, 32]);
  });

  it('grows up to maxCapacity and no further, even when doubling would pass it', () => {
    const r = new Ring<number>(10, 4);
    for (let i = 0; i < 10; i++) expect(r.push(i)).toBe(true);
    expect(r.capacity).toBe(10);
    expect(r.full).toBe(true);
  });

  it('at maxCapacity, push and unshift store nothing and return false: the caller decides what to give up', () => {
    const r = new Ring<number>(3);
    r.push(1);
    r.push(2);
    r.push(3);
    expect(r.push(4)).toBe(false);
    expect(r.unshift(0)).toBe(false);
    expect(contents(r)).toEqual([1, 2, 3]);
    // drop-oldest, done by the caller: make room, then push.
    r.shift();
    expect(r.push(4)).toBe(true);
    expect(contents(r)).toEqual([2, 3, 4]);
  });

  it('keeps FIFO order across the wrap-around and through a growth that starts mid-ring', () => {
    const r = new Ring<number>(Infinity, 4);
    let next = 0;
    let expectNext = 0;
    // Move the head round the ring several times at capacity 4.
    for (let round = 0; round < 10; round++) {
      while (r.length < 3) r.push(next++);
      expect(r.shift()).toBe(expectNext++);
      expect(r.shift()).toBe(expectNext++);
    }
    expect(r.capacity).toBe(4);
    // Now grow while the entries wrap past the end of the storage.
    for (let i = 0; i < 6; i++) r.push(next++);
    expect(r.capacity).toBe(8);
    const rest: number[] = [];
    while (r.length > 0) rest.push(r.shift()!);
    expect(rest).toEqual(Array.from({ length: next - expectNext }, (_, i) => expectNext + i));
  });

  it('unshift at the start of the storage wraps to its end', () => {
    const r = new Ring<number>(Infinity, 4);
    r.push(2);
    r.push(3);
    r.unshift(1);
    r.unshift(0);
    expect(contents(r)).toEqual([0, 1, 2, 3]);
    r.unshift(-1); // full at 4: grows, order kept
    expect(contents(r)).toEqual([-1, 0, 1, 2, 3]);
  });

  it('clear empties the ring and gives its storage back', () => {
    const r = new Ring<number>(Infinity, 4);
    for (let i = 0; i < 100; i++) r.push(i);
    r.clear();
    expect(r.length).toBe(0);
    expect(r.capacity).toBe(0);
    expect(r.peek()).toBeUndefined();
    r.push(5);
    expect(contents(r)).toEqual([5]);
  });

  it('a maxCapacity below 1 is refused', () => {
    expect(() => new Ring(0)).toThrow(OptionsError);
  });
});
