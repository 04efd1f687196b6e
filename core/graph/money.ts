import type { Builder } from '../graphql/builder.ts';
import { requirePrincipal, type Context } from '../graphql/context.ts';

const exponents = new Map<string, number>();

/** Digits after the decimal point for a currency (CNY 2, JPY 0), from the platform's ICU data (memoized: it is on every Money field). */
export function currencyExponent(currency: string): number {
  let exponent = exponents.get(currency);
  if (exponent === undefined) {
    exponent = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
    exponents.set(currency, exponent);
  }
  return exponent;
}

/** Exact conversion of a decimal string to integer minor units; null when it has more digits than the currency. */
export function toMinorUnits(amount: string, currency: string): number | null {
  const exponent = currencyExponent(currency);
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(amount);
  if (!match) return null;
  const [, sign, whole, fraction = ''] = match;
  if (fraction.length > exponent && /[1-9]/.test(fraction.slice(exponent))) return null;
  const minor = BigInt(whole + fraction.slice(0, exponent).padEnd(exponent, '0'));
  if (minor > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return Number(sign ? -minor : minor);
}

export function formatMinorUnits(minor: number | bigint, currency: string): string {
  const exponent = currencyExponent(currency);
  const value = BigInt(minor);
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(exponent + 1, '0');
  const whole = digits.slice(0, digits.length - exponent);
  const fraction = exponent > 0 ? `.${digits.slice(-exponent)}` : '';
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

export interface MoneyValue {
  minor: number | bigint;
  currency: string;
}

export function registerMoney(builder: Builder) {
  builder.objectRef<MoneyValue>('Money').implement({
    description: 'An exact amount of money in a currency.',
    fields: (t) => ({
      amount: t.field({
        type: 'Decimal',
        description: 'Decimal string in the currency\'s major unit, e.g. "680.00".',
        resolve: (money) => formatMinorUnits(money.minor, money.currency),
      }),
      minorUnits: t.string({
        description: 'The amount in the currency\'s minor unit (fen for CNY), as an integer string.',
        resolve: (money) => money.minor.toString(),
      }),
      currencyCode: t.exposeString('currency', { description: 'ISO 4217 code.' }),
    }),
  });
}

/**
 * Money in the caller's organization's currency. Synchronous once the currency is known: a list's amounts (500 in a
 * page of 50 customers' visits) would otherwise each be a promise the executor waits on.
 */
export function moneyFor(ctx: Context, minor: number | bigint): MoneyValue | Promise<MoneyValue> {
  const orgId = requirePrincipal(ctx).orgId;
  const settled = ctx.platform.settledOrgSettings(orgId);
  if (settled) return { minor, currency: settled.currency };
  return ctx.platform.orgSettings(orgId).then(({ currency }) => ({ minor, currency }));
}
