-- Core graph. Every tenant-owned table carries org_id and is guarded by row-level security for the
-- application's role (crm_app): the second wall behind the resolvers' own filters.

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gist;

DO $$ BEGIN
  CREATE ROLE crm_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
-- The connecting user switches to crm_app for application queries (connection option "-c role=crm_app").
GRANT crm_app TO CURRENT_USER;

-- The tenant of the current connection, set by the application per connection; NULL (no rows) when unset.
CREATE FUNCTION app_current_org() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT nullif(current_setting('app.org_id', true), '')::uuid $$;

CREATE TYPE organization_kind AS ENUM ('CHAIN', 'CLINIC');
CREATE TYPE staff_role AS ENUM ('OWNER', 'HQ_ANALYST', 'STORE_MANAGER', 'CONSULTANT', 'BEAUTICIAN', 'FRONT_DESK');
CREATE TYPE gender AS ENUM ('FEMALE', 'MALE', 'OTHER', 'UNDISCLOSED');
CREATE TYPE customer_source AS ENUM ('WALK_IN', 'REFERRAL', 'ONLINE', 'PARTNER', 'OTHER');
CREATE TYPE skin_type AS ENUM ('NORMAL', 'DRY', 'OILY', 'COMBINATION', 'SENSITIVE');
CREATE TYPE consent_purpose AS ENUM ('MARKETING', 'HEALTH_DATA', 'PARTNER_SHARING', 'RESEARCH');
CREATE TYPE service_category AS ENUM ('FACIAL', 'BODY', 'NAIL', 'HAIR_REMOVAL', 'ANTI_AGEING', 'MEDICAL_AESTHETIC');
CREATE TYPE visit_status AS ENUM ('BOOKED', 'CHECKED_IN', 'COMPLETED', 'CANCELLED', 'NO_SHOW', 'REFUNDED');
CREATE TYPE line_item_kind AS ENUM ('SERVICE', 'PRODUCT');
CREATE TYPE membership_status AS ENUM ('ACTIVE', 'SUSPENDED', 'CANCELLED');

CREATE TABLE organization (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  kind organization_kind NOT NULL,
  name text NOT NULL,
  timezone text NOT NULL,
  currency varchar(3) NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now()
);

CREATE TABLE store (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  code text NOT NULL,
  name text NOT NULL,
  timezone text NOT NULL,
  address text,
  phone text,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  UNIQUE (org_id, code)
);
CREATE INDEX store_org_id_idx ON store (org_id);

CREATE TABLE staff (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  name text NOT NULL,
  role staff_role NOT NULL,
  phone text,
  email text,
  active boolean NOT NULL DEFAULT true,
  created_at timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX staff_org_id_idx ON staff (org_id);

CREATE TABLE staff_store (
  staff_id uuid NOT NULL REFERENCES staff(id),
  store_id uuid NOT NULL REFERENCES store(id),
  org_id uuid NOT NULL REFERENCES organization(id),
  PRIMARY KEY (staff_id, store_id)
);
CREATE INDEX staff_store_store_id_idx ON staff_store (store_id);

CREATE TABLE customer (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  home_store_id uuid REFERENCES store(id),
  consultant_id uuid REFERENCES staff(id),
  name text NOT NULL CHECK (length(btrim(name)) > 0),
  phone text NOT NULL,
  birthday date,
  birthday_month smallint GENERATED ALWAYS AS (extract(month FROM birthday)::smallint) STORED,
  gender gender NOT NULL DEFAULT 'UNDISCLOSED',
  source customer_source NOT NULL DEFAULT 'WALK_IN',
  preferences jsonb NOT NULL DEFAULT '{}',
  tags text[] NOT NULL DEFAULT '{}',
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  UNIQUE (org_id, phone)
);
CREATE INDEX customer_org_id_name_idx ON customer (org_id, name);
CREATE INDEX customer_name_trgm_idx ON customer USING gin (name gin_trgm_ops);
CREATE INDEX customer_phone_trgm_idx ON customer USING gin (phone gin_trgm_ops);
CREATE INDEX customer_tags_idx ON customer USING gin (tags);
CREATE INDEX customer_org_birthday_month_idx ON customer (org_id, birthday_month);

CREATE TABLE skin_profile (
  customer_id uuid PRIMARY KEY REFERENCES customer(id),
  org_id uuid NOT NULL REFERENCES organization(id),
  skin_type skin_type,
  allergies text[] NOT NULL DEFAULT '{}',
  sensitivities text[] NOT NULL DEFAULT '{}',
  care_preferences text[] NOT NULL DEFAULT '{}',
  updated_at timestamptz(3) NOT NULL DEFAULT now()
);

CREATE TABLE consent (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  customer_id uuid NOT NULL REFERENCES customer(id),
  purpose consent_purpose NOT NULL,
  partner_org_id uuid REFERENCES organization(id),
  granted boolean NOT NULL,
  recorded_at timestamptz(3) NOT NULL DEFAULT now(),
  recorded_by text NOT NULL
);
CREATE INDEX consent_customer_id_purpose_recorded_at_idx ON consent (customer_id, purpose, recorded_at);

CREATE TABLE service (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  category service_category NOT NULL,
  name text NOT NULL,
  duration_minutes integer NOT NULL CHECK (duration_minutes > 0),
  price_minor integer NOT NULL CHECK (price_minor >= 0),
  repurchase_cycle_days integer CHECK (repurchase_cycle_days > 0),
  contraindication_tags text[] NOT NULL DEFAULT '{}',
  active boolean NOT NULL DEFAULT true
);
CREATE INDEX service_org_id_idx ON service (org_id);

CREATE TABLE product (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  sku text NOT NULL,
  name text NOT NULL,
  price_minor integer NOT NULL CHECK (price_minor >= 0),
  active boolean NOT NULL DEFAULT true,
  UNIQUE (org_id, sku)
);

CREATE TABLE visit (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  store_id uuid NOT NULL REFERENCES store(id),
  customer_id uuid NOT NULL REFERENCES customer(id),
  staff_id uuid REFERENCES staff(id),
  status visit_status NOT NULL DEFAULT 'BOOKED',
  scheduled_start timestamptz(3) NOT NULL,
  scheduled_end timestamptz(3) NOT NULL,
  checked_in_at timestamptz(3),
  completed_at timestamptz(3),
  cancelled_at timestamptz(3),
  cancel_reason text,
  refunded_at timestamptz(3),
  refund_reason text,
  notes text,
  readings jsonb NOT NULL DEFAULT '[]',
  signature jsonb,
  total_minor integer NOT NULL DEFAULT 0 CHECK (total_minor >= 0),
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  CHECK (scheduled_end > scheduled_start),
  -- A staff member cannot be double-booked: no two open visits of one staff member overlap.
  CONSTRAINT visit_staff_no_overlap EXCLUDE USING gist (
    staff_id WITH =, tstzrange(scheduled_start, scheduled_end) WITH &&
  ) WHERE (staff_id IS NOT NULL AND status IN ('BOOKED', 'CHECKED_IN'))
);
CREATE INDEX visit_customer_id_scheduled_start_idx ON visit (customer_id, scheduled_start DESC);
CREATE INDEX visit_store_id_scheduled_start_idx ON visit (store_id, scheduled_start);
CREATE INDEX visit_org_id_scheduled_start_idx ON visit (org_id, scheduled_start);

CREATE TABLE visit_line (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  visit_id uuid NOT NULL REFERENCES visit(id),
  position integer NOT NULL,
  kind line_item_kind NOT NULL,
  service_id uuid REFERENCES service(id),
  product_id uuid REFERENCES product(id),
  staff_id uuid REFERENCES staff(id),
  description text NOT NULL,
  quantity integer NOT NULL CHECK (quantity > 0),
  unit_price_minor integer NOT NULL CHECK (unit_price_minor >= 0),
  discount_minor integer NOT NULL DEFAULT 0 CHECK (discount_minor >= 0),
  amount_minor integer NOT NULL CHECK (amount_minor >= 0),
  UNIQUE (visit_id, position),
  CHECK ((kind = 'SERVICE' AND service_id IS NOT NULL AND product_id IS NULL)
      OR (kind = 'PRODUCT' AND product_id IS NOT NULL AND service_id IS NULL))
);

CREATE TABLE membership (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  customer_id uuid NOT NULL UNIQUE REFERENCES customer(id),
  member_number text NOT NULL,
  joined_on date NOT NULL,
  home_store_id uuid NOT NULL REFERENCES store(id),
  status membership_status NOT NULL DEFAULT 'ACTIVE',
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  UNIQUE (org_id, member_number)
);

CREATE TABLE customer_fact (
  customer_id uuid PRIMARY KEY REFERENCES customer(id),
  org_id uuid NOT NULL REFERENCES organization(id),
  visit_count integer NOT NULL DEFAULT 0 CHECK (visit_count >= 0),
  first_visit_at timestamptz(3),
  last_visit_at timestamptz(3),
  total_spend_minor bigint NOT NULL DEFAULT 0 CHECK (total_spend_minor >= 0)
);
CREATE INDEX customer_fact_org_id_last_visit_at_idx ON customer_fact (org_id, last_visit_at);

CREATE TABLE org_counter (
  org_id uuid NOT NULL REFERENCES organization(id),
  name text NOT NULL,
  value bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (org_id, name)
);

CREATE TABLE api_client (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  name text NOT NULL,
  scopes text[] NOT NULL,
  store_ids uuid[] NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  revoked_at timestamptz(3)
);

CREATE TABLE domain_event (
  id bigserial PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES organization(id),
  type text NOT NULL,
  aggregate_type text NOT NULL,
  aggregate_id uuid NOT NULL,
  stream_key text,
  payload jsonb NOT NULL,
  actor text NOT NULL,
  occurred_at timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX domain_event_org_id_aggregate_id_idx ON domain_event (org_id, aggregate_id);

CREATE TABLE processed_event (
  handler text NOT NULL,
  event_id bigint NOT NULL REFERENCES domain_event(id),
  org_id uuid NOT NULL REFERENCES organization(id),
  processed_at timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (handler, event_id)
);

CREATE TABLE idempotency_record (
  org_id uuid NOT NULL REFERENCES organization(id),
  principal_key text NOT NULL,
  key text NOT NULL,
  operation text NOT NULL,
  request_hash text NOT NULL,
  result jsonb NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, principal_key, key)
);

-- Each outbox row becomes a durable graphile-worker job. SECURITY DEFINER: crm_app has no rights on the
-- queue's own tables. Jobs of one stream (e.g. one customer) share a queue and so run in order.
CREATE FUNCTION enqueue_domain_event() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, public AS $$
BEGIN
  PERFORM graphile_worker.add_job(
    'domain-event',
    json_build_object('id', NEW.id),
    queue_name => CASE WHEN NEW.stream_key IS NULL THEN NULL ELSE 'stream:' || NEW.stream_key END,
    max_attempts => 25
  );
  RETURN NULL;
END $$;
CREATE TRIGGER domain_event_enqueue AFTER INSERT ON domain_event
  FOR EACH ROW EXECUTE FUNCTION enqueue_domain_event();

-- Tenant isolation for the application role.
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['store', 'staff', 'staff_store', 'customer', 'skin_profile', 'consent', 'service',
    'product', 'visit', 'visit_line', 'membership', 'customer_fact', 'org_counter', 'api_client', 'domain_event',
    'processed_event', 'idempotency_record']
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I TO crm_app USING (org_id = app_current_org())'
      ' WITH CHECK (org_id = app_current_org())', t);
  END LOOP;
END $$;
ALTER TABLE organization ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON organization TO crm_app USING (id = app_current_org());

GRANT USAGE ON SCHEMA public TO crm_app;
GRANT SELECT ON organization TO crm_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON store, staff, staff_store, customer, skin_profile, service, product, visit,
  visit_line, membership, customer_fact, org_counter, api_client TO crm_app;
-- Append-only for the application: history is never rewritten.
GRANT SELECT, INSERT ON consent, domain_event, processed_event TO crm_app;
-- An idempotency record is claimed first and filled with its result when the work is done.
GRANT SELECT, INSERT, UPDATE ON idempotency_record TO crm_app;
GRANT USAGE ON SEQUENCE domain_event_id_seq TO crm_app;
GRANT EXECUTE ON FUNCTION app_current_org() TO crm_app;
