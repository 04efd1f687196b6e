/**
 * Token minting (embedded/dev issuer and the `npm run token` CLI). Produces the claims layout that
 * principalFromClaims reads, so `verify(await mintToken(key, p, opts))` round-trips to `p`.
 */
import { randomUUID } from 'node:crypto';
import { SignJWT, type CryptoKey, type KeyObject } from 'jose';
import { parsePrincipal, principalToClaims, type Principal } from './principal.ts';

export type SigningKey = {
  privateKey: CryptoKey | KeyObject | Uint8Array;
  kid: string;
  alg: string;
};

export type MintOptions = {
  issuer: string;
  audience: string;
  /** jose time span: '12h', '15m', '7d', '30s'; a negative span ('-1m') yields an already expired token. */
  expiresIn?: string;
};

export async function mintToken(
  { privateKey, kid, alg }: SigningKey,
  principal: Principal,
  { issuer, audience, expiresIn = '12h' }: MintOptions,
): Promise<string> {
  // Same validation as verification: never mint a token that would be rejected as INVALID_CLAIMS.
  const { sub, ...claims } = principalToClaims(parsePrincipal(principal));
  return new SignJWT(claims)
    .setProtectedHeader({ alg, kid, typ: 'JWT' })
    .setSubject(sub)
    .setIssuer(issuer)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .setJti(randomUUID())
    .sign(privateKey);
}
