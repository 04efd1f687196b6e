import type { Principal, StaffRole } from './principal.ts';

/**
 * What a principal may do, as named capabilities. Staff get them from their role, API clients from the
 * scopes in their token (a scope is a capability name). Customers act only on themselves and get none of
 * these: their access is decided where the data is (a customer sees only their own rows).
 * Plugins add capabilities of their own through `grantCapability`.
 */
const roleCapabilities = new Map<string, Set<StaffRole>>();

export function grantCapability(capability: string, roles: readonly StaffRole[]): void {
  const granted = roleCapabilities.get(capability) ?? new Set<StaffRole>();
  for (const role of roles) granted.add(role);
  roleCapabilities.set(capability, granted);
}

const ALL_STAFF: StaffRole[] = ['OWNER', 'HQ_ANALYST', 'STORE_MANAGER', 'CONSULTANT', 'BEAUTICIAN', 'FRONT_DESK'];

grantCapability('customers:read', ALL_STAFF);
grantCapability('customers:write', ['OWNER', 'STORE_MANAGER', 'CONSULTANT', 'FRONT_DESK']);
// Unmasked phone numbers: the people who call or greet customers.
grantCapability('customers:contact', ['OWNER', 'STORE_MANAGER', 'CONSULTANT', 'FRONT_DESK']);
// Skin profile, allergies and sensitivities: sensitive personal information (PIPL), for those who treat.
grantCapability('customers:health', ['OWNER', 'STORE_MANAGER', 'CONSULTANT', 'BEAUTICIAN']);
grantCapability('visits:read', ALL_STAFF);
grantCapability('visits:write', ['OWNER', 'STORE_MANAGER', 'CONSULTANT', 'BEAUTICIAN', 'FRONT_DESK']);
// Refunds move money back: managers only.
grantCapability('visits:refund', ['OWNER', 'STORE_MANAGER']);
grantCapability('memberships:write', ['OWNER', 'STORE_MANAGER', 'CONSULTANT', 'FRONT_DESK']);
grantCapability('staff:read', ALL_STAFF);

export function can(principal: Principal | null, capability: string): boolean {
  if (!principal) return false;
  switch (principal.kind) {
    case 'STAFF':
      return roleCapabilities.get(capability)?.has(principal.role) ?? false;
    case 'API_CLIENT':
      return principal.scopes.includes(capability);
    case 'CUSTOMER':
      return false;
  }
}

/** Roles that see the whole organization; every other staff role and every API client is bound to stores. */
export function isOrgWide(principal: Principal): boolean {
  return principal.kind === 'STAFF' && (principal.role === 'OWNER' || principal.role === 'HQ_ANALYST');
}

/** The stores a principal is confined to, or null when it sees every store of its organization. */
export function storeScope(principal: Principal): string[] | null {
  if (principal.kind === 'CUSTOMER' || isOrgWide(principal)) return null;
  return principal.storeIds;
}

/** A stable key for idempotency records and audit: who did it. */
export function principalKey(principal: Principal): string {
  switch (principal.kind) {
    case 'STAFF':
      return `staff:${principal.staffId}`;
    case 'CUSTOMER':
      return `customer:${principal.customerId}`;
    case 'API_CLIENT':
      return `api_client:${principal.clientId}`;
  }
}
