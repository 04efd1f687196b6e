import type { Period } from './metrics-sql.ts';

/** Calendar arithmetic on YYYY-MM-DD strings (UTC dates, no time zone involved). */
const toDate = (day: string) => new Date(`${day}T00:00:00Z`);
const toDay = (date: Date) => date.toISOString().slice(0, 10);

export function periodStart(day: string, period: Period): string {
  const date = toDate(day);
  switch (period) {
    case 'DAY':
      return day;
    case 'WEEK':
      date.setUTCDate(date.getUTCDate() - ((date.getUTCDay() + 6) % 7));
      return toDay(date);
    case 'MONTH':
      return `${day.slice(0, 7)}-01`;
    case 'QUARTER':
      return `${day.slice(0, 4)}-${String(Math.floor((date.getUTCMonth()) / 3) * 3 + 1).padStart(2, '0')}-01`;
    case 'YEAR':
      return `${day.slice(0, 4)}-01-01`;
  }
}

export function addPeriods(start: string, period: Period, count: number): string {
  const date = toDate(start);
  switch (period) {
    case 'DAY':
      date.setUTCDate(date.getUTCDate() + count);
      break;
    case 'WEEK':
      date.setUTCDate(date.getUTCDate() + 7 * count);
      break;
    case 'MONTH':
      date.setUTCMonth(date.getUTCMonth() + count);
      break;
    case 'QUARTER':
      date.setUTCMonth(date.getUTCMonth() + 3 * count);
      break;
    case 'YEAR':
      date.setUTCFullYear(date.getUTCFullYear() + count);
      break;
  }
  return toDay(date);
}

export function addDays(day: string, count: number): string {
  const date = toDate(day);
  date.setUTCDate(date.getUTCDate() + count);
  return toDay(date);
}

/** The whole periods overlapping [from, to]: their count, first day and last day. */
export function periodsCovering(from: string, to: string, period: Period): { count: number; first: string; last: string } {
  const first = periodStart(from, period);
  const lastStart = periodStart(to, period);
  let count = 1;
  for (let start = first; start < lastStart; start = addPeriods(start, period, 1)) {
    count += 1;
    if (count > 10_000) break;
  }
  return { count, first, last: addDays(addPeriods(lastStart, period, 1), -1) };
}
