import { describe, expect, test } from 'vitest';
import { instantOfWallClock, localDate, localParts } from './local-time.ts';

describe('local time in a time zone', () => {
  test('the local date and parts of an instant, midnight as hour 0', () => {
    const at = new Date('2026-01-31T18:30:00Z'); // 00:30 on 1 February in Urumqi (UTC+6)
    expect(localDate('Asia/Urumqi', at)).toBe('2026-02-01');
    expect(localDate('Asia/Shanghai', at)).toBe('2026-02-01');
    expect(localDate('America/New_York', at)).toBe('2026-01-31');
    expect(localParts('Asia/Urumqi', at)).toEqual({ year: 2026, month: 2, day: 1, hour: 0, minute: 30, second: 0 });
    expect(localParts('Asia/Urumqi', at.getTime())).toEqual(localParts('Asia/Urumqi', at));
  });

  test('the instant of a wall-clock time, on both sides of a DST change', () => {
    expect(instantOfWallClock('Asia/Urumqi', Date.UTC(2026, 1, 1, 0, 30)).toISOString()).toBe('2026-01-31T18:30:00.000Z');
    // New York moves from UTC−5 to UTC−4 at 02:00 on 8 March 2026.
    expect(instantOfWallClock('America/New_York', Date.UTC(2026, 2, 8, 1, 30)).toISOString()).toBe('2026-03-08T06:30:00.000Z');
    expect(instantOfWallClock('America/New_York', Date.UTC(2026, 2, 8, 3, 30)).toISOString()).toBe('2026-03-08T07:30:00.000Z');
  });

  test('an unknown time zone is refused, not cached', () => {
    expect(() => localDate('Mars/Olympus_Mons')).toThrow(RangeError);
    expect(() => localDate('Mars/Olympus_Mons')).toThrow(RangeError);
  });
});
