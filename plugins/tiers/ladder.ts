import type { Db, Tx } from '../../core/db/clients.ts';
import { formatMinorUnits } from '../../core/graph/money.ts';

/** A rule that reaches a tier: at least this rolling spend AND at least this many counted tasks. */
export interface Rule {
  minSpendMinor: bigint;
  minTasks: number;
}

/** One level of a ladder with its rules (rows of tier_level and tier_qualification). */
export interface Level {
  id: string;
  orgId: string;
  code: string;
  name: string;
  rank: number;
  discountBp: number;
  pointsMultiplierPct: number;
  birthdayGift: string | null;
  freeSkinTestsPerYear: number;
  priorityBooking: boolean;
  dedicatedConsultant: boolean;
  perks: string[];
  createdAt: Date;
  updatedAt: Date;
  qualifications: (Rule & { id: string; orgId: string; tierId: string })[];
}

/** An organization's levels, lowest first. Position 1 is the lowest tier; position 0 means no tier. */
export class Ladder {
  readonly byId: Map<string, Level>;

  constructor(readonly levels: Level[]) {
    this.levels = [...levels].sort((a, b) => a.rank - b.rank);
    this.byId = new Map(this.levels.map((level) => [level.id, level]));
  }

  get empty(): boolean {
    return this.levels.length === 0;
  }

  /** 0 for no tier, 1 for the lowest level, … */
  position(tierId: string | null | undefined): number {
    if (!tierId) return 0;
    const index = this.levels.findIndex((level) => level.id === tierId);
    return index + 1;
  }

  at(position: number): Level | null {
    return position <= 0 ? null : (this.levels[position - 1] ?? null);
  }

  get(tierId: string | null | undefined): Level | null {
    return tierId ? (this.byId.get(tierId) ?? null) : null;
  }

  /** The highest level one of whose rules the metrics meet (null when none). */
  qualified(metrics: Metrics): Level | null {
    for (let index = this.levels.length - 1; index >= 0; index--) {
      const level = this.levels[index]!;
      if (level.qualifications.some((rule) => meets(rule, metrics))) return level;
    }
    return null;
  }

  /** The level above a position, if any. */
  above(position: number): Level | null {
    return this.at(position + 1);
  }
}

export interface Metrics {
  /** Completed visits' totals in the window (refunded visits no longer count). */
  spendMinor: bigint;
  /** Behaviour tasks completed in the window, each task counted at most its max_per_window times. */
  tasks: number;
}

export function meets(rule: Rule, metrics: Metrics): boolean {
  return metrics.spendMinor >= rule.minSpendMinor && metrics.tasks >= rule.minTasks;
}

/** What is still missing for each rule of a level (0 where a part is already met). */
export function remainingFor(level: Level, metrics: Metrics) {
  return level.qualifications
    .map((rule) => ({
      rule,
      spendRemainingMinor: rule.minSpendMinor > metrics.spendMinor ? rule.minSpendMinor - metrics.spendMinor : 0n,
      tasksRemaining: Math.max(0, rule.minTasks - metrics.tasks),
    }))
    .sort((a, b) => (a.rule.minSpendMinor < b.rule.minSpendMinor ? 1 : a.rule.minSpendMinor > b.rule.minSpendMinor ? -1 : a.rule.minTasks - b.rule.minTasks));
}

export async function loadLadder(db: Tx | Db, orgId: string): Promise<Ladder> {
  const levels = await db.tierLevel.findMany({
    where: { orgId },
    include: { qualifications: { orderBy: [{ minSpendMinor: 'desc' }, { minTasks: 'asc' }] } },
    orderBy: { rank: 'asc' },
  });
  return new Ladder(levels);
}

// --- Words for reasons ------------------------------------------------------------------------------------------

export function money(minor: bigint, currency: string): string {
  return `${currency} ${formatMinorUnits(minor, currency)}`;
}

export function describeRule(rule: Rule, currency: string): string {
  const spend = `spend ≥ ${money(rule.minSpendMinor, currency)}`;
  return rule.minTasks > 0 ? `${spend} and ${rule.minTasks} task${rule.minTasks === 1 ? '' : 's'}` : spend;
}

export function describeMetrics(metrics: Metrics, currency: string, windowMonths: number, today: string): string {
  return `${money(metrics.spendMinor, currency)} spent and ${metrics.tasks} task${metrics.tasks === 1 ? '' : 's'} in the ${windowMonths} months to ${today}`;
}

/** Percent from basis points / hundredths as an exact decimal string: 500 → "5", 1250 → "12.5", 150 → "1.5". */
export function hundredths(value: number): string {
  const whole = Math.trunc(value / 100);
  const fraction = String(Math.abs(value % 100)).padStart(2, '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : String(whole);
}
