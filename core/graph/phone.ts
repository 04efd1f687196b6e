import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';

/** E.164 form of a phone number, read in the organization's default region; null when it is not a valid number. */
export function normalizePhone(raw: string, defaultRegion: CountryCode = 'CN'): string | null {
  const parsed = parsePhoneNumberFromString(raw.trim(), defaultRegion);
  return parsed?.isValid() ? parsed.number : null;
}

/** +8613812345678 → +86 138****5678: enough to recognise a customer, not enough to call them. */
export function maskPhone(e164: string): string {
  const parsed = parsePhoneNumberFromString(e164);
  if (!parsed) return '****';
  const national = parsed.nationalNumber;
  const keep = Math.min(3, Math.floor(national.length / 3));
  const visibleEnd = national.slice(-4);
  return `+${parsed.countryCallingCode} ${national.slice(0, keep)}${'*'.repeat(Math.max(national.length - keep - 4, 0))}${visibleEnd}`;
}
