/**
 * Wall-clock time in a store's or organization's IANA time zone, computed with Intl, so DST and offsets such as
 * Asia/Urumqi's are right. One formatter per zone, built on first use: building an Intl.DateTimeFormat costs far more
 * than formatting with it, and a points award, a tier evaluation and a survey period each needed one.
 */
export interface LocalParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timezone: string): Intl.DateTimeFormat {
  let format = formatters.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timezone, format);
  }
  return format;
}

/** The wall-clock parts of an instant in a time zone (month 1–12, hour 0–23). */
export function localParts(timezone: string, at: Date | number): LocalParts {
  const parts: LocalParts = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const { type, value } of formatter(timezone).formatToParts(at)) {
    if (type in parts) parts[type as keyof LocalParts] = Number(value);
  }
  return parts;
}

/** The local calendar date of an instant, YYYY-MM-DD. */
export function localDate(timezone: string, at: Date | number = new Date()): string {
  const { year, month, day } = localParts(timezone, at);
  return `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/** The offset of a time zone from UTC at an instant, in ms (whole seconds). */
function offsetMs(timezone: string, at: number): number {
  const p = localParts(timezone, at);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(at / 1000) * 1000;
}

/**
 * The instant a wall-clock time has in a time zone. `wallClockMs` is that wall-clock time read as if it were UTC,
 * e.g. `Date.UTC(2026, 0, 31, 23, 30)`. The offset is looked up twice, so a time just after a DST change is right.
 */
export function instantOfWallClock(timezone: string, wallClockMs: number): Date {
  const guess = wallClockMs - offsetMs(timezone, wallClockMs);
  return new Date(wallClockMs - offsetMs(timezone, guess));
}
