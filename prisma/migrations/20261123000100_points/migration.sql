-- Loyalty points plugin. Points behave like money: an append-only ledger, a cached balance kept equal to
-- the ledger by a trigger, and a CHECK that no balance is ever negative.

CREATE TYPE points_entry_kind AS ENUM ('EARN', 'REDEEM', 'EXPIRE', 'ADJUST', 'DONATE', 'REVERSAL');
CREATE TYPE points_reward_kind AS ENUM ('SERVICE', 'PRODUCT', 'CONSULTATION', 'PARTNER_PERK');
CREATE TYPE points_redemption_status AS ENUM ('ACTIVE', 'CANCELLED');

CREATE TABLE points_account (
  membership_id uuid PRIMARY KEY REFERENCES membership(id),
  org_id uuid NOT NULL REFERENCES organization(id),
  customer_id uuid NOT NULL UNIQUE REFERENCES customer(id),
  balance integer NOT NULL DEFAULT 0 CONSTRAINT points_balance_not_negative CHECK (balance >= 0),
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now()
);

CREATE TABLE points_entry (
  id bigserial PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES organization(id),
  account_id uuid NOT NULL REFERENCES points_account(membership_id),
  customer_id uuid NOT NULL REFERENCES customer(id),
  kind points_entry_kind NOT NULL,
  amount integer NOT NULL,
  source text NOT NULL,
  source_ref text,
  -- Makes "award once per source" a database fact, however often an event is delivered.
  dedupe_key text,
  store_id uuid REFERENCES store(id),
  actor text NOT NULL,
  reason text,
  reverses_entry_id bigint REFERENCES points_entry(id),
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  UNIQUE (org_id, dedupe_key),
  CHECK (amount <> 0),
  CHECK ((kind = 'EARN' AND amount > 0) OR (kind IN ('REDEEM', 'EXPIRE', 'DONATE') AND amount < 0)
      OR kind IN ('ADJUST', 'REVERSAL')),
  CHECK (kind NOT IN ('ADJUST') OR reason IS NOT NULL)
);
CREATE INDEX points_entry_account_id_created_at_id_idx ON points_entry (account_id, created_at DESC, id DESC);
CREATE INDEX points_entry_org_id_created_at_idx ON points_entry (org_id, created_at);

CREATE TABLE points_lot (
  id bigserial PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES organization(id),
  account_id uuid NOT NULL REFERENCES points_account(membership_id),
  earn_entry_id bigint NOT NULL UNIQUE REFERENCES points_entry(id),
  earned_at timestamptz(3) NOT NULL,
  expires_at timestamptz(3) NOT NULL,
  original integer NOT NULL CHECK (original > 0),
  remaining integer NOT NULL CHECK (remaining >= 0 AND remaining <= original)
);
CREATE INDEX points_lot_account_id_expires_at_id_idx ON points_lot (account_id, expires_at, id);
CREATE INDEX points_lot_due_idx ON points_lot (expires_at) WHERE remaining > 0;

CREATE TABLE points_allocation (
  debit_entry_id bigint NOT NULL REFERENCES points_entry(id),
  lot_id bigint NOT NULL REFERENCES points_lot(id),
  org_id uuid NOT NULL REFERENCES organization(id),
  amount integer NOT NULL CHECK (amount > 0),
  PRIMARY KEY (debit_entry_id, lot_id)
);

CREATE TABLE points_reward (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  kind points_reward_kind NOT NULL,
  name text NOT NULL CHECK (length(btrim(name)) > 0),
  description text,
  points_price integer NOT NULL CHECK (points_price > 0),
  stock integer CHECK (stock >= 0),
  valid_from timestamptz(3),
  valid_until timestamptz(3),
  per_customer_limit integer CHECK (per_customer_limit > 0),
  eligible_tiers text[] NOT NULL DEFAULT '{}',
  service_id uuid REFERENCES service(id),
  product_id uuid REFERENCES product(id),
  active boolean NOT NULL DEFAULT true,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  CHECK (valid_until IS NULL OR valid_from IS NULL OR valid_until > valid_from)
);
CREATE INDEX points_reward_org_id_idx ON points_reward (org_id);

CREATE TABLE points_redemption (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  account_id uuid NOT NULL REFERENCES points_account(membership_id),
  customer_id uuid NOT NULL REFERENCES customer(id),
  reward_id uuid NOT NULL REFERENCES points_reward(id),
  store_id uuid REFERENCES store(id),
  quantity integer NOT NULL CHECK (quantity > 0),
  points integer NOT NULL CHECK (points > 0),
  status points_redemption_status NOT NULL DEFAULT 'ACTIVE',
  debit_entry_id bigint NOT NULL REFERENCES points_entry(id),
  reversal_entry_id bigint REFERENCES points_entry(id),
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  cancelled_at timestamptz(3),
  cancel_reason text
);
CREATE INDEX points_redemption_customer_id_created_at_idx ON points_redemption (customer_id, created_at);

-- The cached balance moves with every entry, in the same statement: it always equals the ledger's sum,
-- and a debit that would make it negative fails (points_balance_not_negative).
CREATE FUNCTION points_apply_entry() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, public AS $$
BEGIN
  UPDATE points_account SET balance = balance + NEW.amount, updated_at = now()
   WHERE membership_id = NEW.account_id;
  RETURN NULL;
END $$;
CREATE TRIGGER points_entry_apply AFTER INSERT ON points_entry
  FOR EACH ROW EXECUTE FUNCTION points_apply_entry();

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['points_account', 'points_entry', 'points_lot', 'points_allocation', 'points_reward',
    'points_redemption']
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I TO crm_app USING (org_id = app_current_org())'
      ' WITH CHECK (org_id = app_current_org())', t);
  END LOOP;
END $$;

-- The application never writes a balance (the trigger does) and never rewrites the ledger.
GRANT SELECT, INSERT (membership_id, org_id, customer_id, created_at, updated_at) ON points_account TO crm_app;
GRANT SELECT, INSERT ON points_entry, points_allocation TO crm_app;
GRANT SELECT, INSERT, UPDATE ON points_lot, points_reward, points_redemption TO crm_app;
GRANT USAGE ON SEQUENCE points_entry_id_seq, points_lot_id_seq TO crm_app;
