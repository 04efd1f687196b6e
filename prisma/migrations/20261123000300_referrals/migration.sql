-- Referrals plugin (plugins/referrals). Every customer has a shareable code; a newcomer claims one, qualifies with a
-- first paid visit, and both sides are then rewarded in points (never cash: nothing here can hold money paid out).
-- Core and points rows are referenced by id only.

CREATE TYPE referral_status AS ENUM ('PENDING', 'QUALIFIED', 'REWARDED', 'EXPIRED', 'REJECTED');

-- One code per customer, for ever: 8 characters from an alphabet without look-alikes (no 0/O, 1/I/L).
-- Written only by the triggers below (the application role may read it).
CREATE TABLE referral_code (
  customer_id uuid PRIMARY KEY REFERENCES customer(id),
  org_id uuid NOT NULL REFERENCES organization(id),
  code text NOT NULL CHECK (code ~ '^[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{8}$'),
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  UNIQUE (org_id, code)
);

-- Every phone number a customer has had. Numbers are unique among customers at any moment, so "the same phone" on
-- both sides of a referral means a number that passed from one account to the other.
CREATE TABLE referral_phone (
  customer_id uuid NOT NULL REFERENCES customer(id),
  phone text NOT NULL,
  org_id uuid NOT NULL REFERENCES organization(id),
  seen_at timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (customer_id, phone)
);
CREATE INDEX referral_phone_org_id_phone_idx ON referral_phone (org_id, phone);

CREATE TABLE referral (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  referrer_id uuid NOT NULL REFERENCES customer(id),
  referee_id uuid NOT NULL REFERENCES customer(id),
  code text NOT NULL,
  -- The referee's home store when they claimed: referral metrics are counted per this store.
  store_id uuid REFERENCES store(id),
  status referral_status NOT NULL DEFAULT 'PENDING',
  claimed_at timestamptz(3) NOT NULL DEFAULT now(),
  claimed_by text NOT NULL,
  qualify_by timestamptz(3) NOT NULL,
  qualified_at timestamptz(3),
  qualifying_visit_id uuid REFERENCES visit(id),
  qualifying_amount_minor bigint CHECK (qualifying_amount_minor > 0),
  -- Points each side is owed (fixed at qualification) and the ledger entries that paid them.
  referrer_points integer CHECK (referrer_points > 0),
  referee_points integer CHECK (referee_points > 0),
  referrer_entry_id bigint REFERENCES points_entry(id),
  referee_entry_id bigint REFERENCES points_entry(id),
  rewarded_at timestamptz(3),
  expired_at timestamptz(3),
  rejected_at timestamptz(3),
  rejection_code text CHECK (rejection_code ~ '^[A-Z][A-Z_]{2,40}$'),
  rejection_reason text CHECK (length(rejection_reason) <= 500),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  CONSTRAINT referral_not_self CHECK (referrer_id <> referee_id),
  -- A customer is referred once (a rejected or expired claim is not repeated).
  CONSTRAINT referral_one_per_referee UNIQUE (org_id, referee_id),
  CHECK (qualify_by > claimed_at),
  CHECK ((referrer_entry_id IS NULL OR referrer_points IS NOT NULL) AND (referee_entry_id IS NULL OR referee_points IS NOT NULL)),
  CONSTRAINT referral_status_consistent CHECK (CASE status
    WHEN 'PENDING' THEN qualified_at IS NULL AND rewarded_at IS NULL AND expired_at IS NULL AND rejected_at IS NULL
    WHEN 'QUALIFIED' THEN qualified_at IS NOT NULL AND qualifying_visit_id IS NOT NULL AND referrer_points IS NOT NULL
      AND referee_points IS NOT NULL AND rewarded_at IS NULL AND expired_at IS NULL AND rejected_at IS NULL
    WHEN 'REWARDED' THEN qualified_at IS NOT NULL AND qualifying_visit_id IS NOT NULL AND rewarded_at IS NOT NULL
      AND referrer_entry_id IS NOT NULL AND referee_entry_id IS NOT NULL AND expired_at IS NULL AND rejected_at IS NULL
    WHEN 'EXPIRED' THEN expired_at IS NOT NULL AND qualified_at IS NULL AND rejected_at IS NULL
    WHEN 'REJECTED' THEN rejected_at IS NOT NULL AND rejection_code IS NOT NULL
  END)
);
CREATE INDEX referral_org_id_referrer_id_claimed_at_idx ON referral (org_id, referrer_id, claimed_at);
CREATE INDEX referral_org_id_store_id_claimed_at_idx ON referral (org_id, store_id, claimed_at);
CREATE INDEX referral_pending_qualify_by_idx ON referral (qualify_by) WHERE status = 'PENDING';
CREATE INDEX referral_qualifying_visit_id_idx ON referral (qualifying_visit_id);

-- "Aesthetic partner" levels of an organization (without rows, the plugin's configured defaults apply).
CREATE TABLE referral_partner_level (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  code text NOT NULL CHECK (code ~ '^[A-Z][A-Z0-9_]{1,29}$'),
  name text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 60),
  rank smallint NOT NULL CHECK (rank BETWEEN 0 AND 20),
  min_converted_referrals integer NOT NULL CHECK (min_converted_referrals >= 0),
  min_spend_12m_minor bigint NOT NULL CHECK (min_spend_12m_minor >= 0),
  referral_bonus_percent integer NOT NULL DEFAULT 0 CHECK (referral_bonus_percent BETWEEN 0 AND 200),
  benefits jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(benefits) = 'array'),
  UNIQUE (org_id, code),
  UNIQUE (org_id, rank)
);

-- Lifecycle moves only forward; who referred whom never changes.
CREATE FUNCTION referral_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.org_id <> OLD.org_id OR NEW.referrer_id <> OLD.referrer_id OR NEW.referee_id <> OLD.referee_id OR NEW.code <> OLD.code THEN
    RAISE EXCEPTION 'a referral''s parties never change' USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status <> OLD.status AND NOT (
       (OLD.status = 'PENDING' AND NEW.status IN ('QUALIFIED', 'EXPIRED', 'REJECTED'))
    -- A visit completed before the deadline can arrive after the expiry job ran.
    OR (OLD.status = 'EXPIRED' AND NEW.status IN ('QUALIFIED', 'REJECTED'))
    OR (OLD.status = 'QUALIFIED' AND NEW.status IN ('REWARDED', 'REJECTED'))
    OR (OLD.status = 'REWARDED' AND NEW.status = 'REJECTED')) THEN
    RAISE EXCEPTION 'a referral cannot go from % to %', OLD.status, NEW.status USING ERRCODE = 'check_violation';
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END $$;
CREATE TRIGGER referral_guard BEFORE UPDATE ON referral FOR EACH ROW EXECUTE FUNCTION referral_guard_update();

-- A fresh code for a customer (nothing when they have one). Random bytes of a v4 uuid, skipping its fixed bits.
CREATE FUNCTION referral_assign_code(p_customer_id uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  alphabet constant text := 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
  bytes bytea;
  candidate text;
  i integer;
  added integer;
BEGIN
  LOOP
    bytes := uuid_send(gen_random_uuid());
    candidate := '';
    FOREACH i IN ARRAY ARRAY[0, 1, 2, 3, 4, 5, 10, 11] LOOP
      candidate := candidate || substr(alphabet, 1 + get_byte(bytes, i) % 31, 1);
    END LOOP;
    INSERT INTO referral_code (customer_id, org_id, code)
    SELECT id, org_id, candidate FROM customer WHERE id = p_customer_id
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    -- Taken code: draw again. Customer already coded (or absent): done.
    EXIT WHEN added > 0 OR EXISTS (SELECT 1 FROM referral_code WHERE customer_id = p_customer_id)
      OR NOT EXISTS (SELECT 1 FROM customer WHERE id = p_customer_id);
  END LOOP;
END $$;
REVOKE ALL ON FUNCTION referral_assign_code(uuid) FROM PUBLIC;

-- Each new customer gets a code, and each number a customer has is remembered. SECURITY DEFINER: the application
-- role may only read these tables.
CREATE FUNCTION referral_track_customer() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, public AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM referral_assign_code(NEW.id);
  END IF;
  INSERT INTO referral_phone (customer_id, phone, org_id) VALUES (NEW.id, NEW.phone, NEW.org_id) ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;
CREATE TRIGGER customer_referral_insert AFTER INSERT ON customer
  FOR EACH ROW EXECUTE FUNCTION referral_track_customer();
CREATE TRIGGER customer_referral_phone AFTER UPDATE OF phone ON customer
  FOR EACH ROW WHEN (OLD.phone IS DISTINCT FROM NEW.phone) EXECUTE FUNCTION referral_track_customer();

-- Customers that exist already.
INSERT INTO referral_phone (customer_id, phone, org_id) SELECT id, phone, org_id FROM customer ON CONFLICT DO NOTHING;
DO $$
DECLARE c uuid;
BEGIN
  FOR c IN SELECT id FROM customer WHERE NOT EXISTS (SELECT 1 FROM referral_code r WHERE r.customer_id = customer.id) LOOP
    PERFORM referral_assign_code(c);
  END LOOP;
END $$;

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['referral_code', 'referral_phone', 'referral', 'referral_partner_level']
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I TO crm_app USING (org_id = app_current_org())'
      ' WITH CHECK (org_id = app_current_org())', t);
  END LOOP;
END $$;

-- Codes and phone history are written by the triggers only.
GRANT SELECT ON referral_code, referral_phone TO crm_app;
GRANT SELECT, INSERT, UPDATE ON referral TO crm_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON referral_partner_level TO crm_app;
