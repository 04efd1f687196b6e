-- Membership tiers plugin. The ladder, its qualification rules, benefits and behaviour tasks are data per
-- organization; a member's tier state is one row, and every change to it is an append-only history row.
-- Tier references carry the organization (composite foreign keys), so no row can point at another
-- organization's tier even if a filter were forgotten.

CREATE TYPE tier_change_kind AS ENUM ('UPGRADE', 'DOWNGRADE', 'OVERRIDE_SET', 'OVERRIDE_ENDED');
CREATE TYPE tier_task_source AS ENUM ('EVENT', 'STAFF');

CREATE TABLE tier_level (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  code text NOT NULL CHECK (code ~ '^[A-Z][A-Z0-9_]{0,39}$'),
  name text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 80),
  -- 1 is the lowest tier; a higher rank is a higher tier.
  rank integer NOT NULL CHECK (rank BETWEEN 1 AND 20),
  -- Benefits. Rates are integers: basis points of discount (500 = 5% off) and percent of points (150 = ×1.5).
  discount_bp integer NOT NULL DEFAULT 0 CHECK (discount_bp BETWEEN 0 AND 9000),
  points_multiplier_pct integer NOT NULL DEFAULT 100 CHECK (points_multiplier_pct BETWEEN 100 AND 1000),
  birthday_gift text CHECK (birthday_gift IS NULL OR length(btrim(birthday_gift)) BETWEEN 1 AND 200),
  free_skin_tests_per_year integer NOT NULL DEFAULT 0 CHECK (free_skin_tests_per_year BETWEEN 0 AND 52),
  priority_booking boolean NOT NULL DEFAULT false,
  dedicated_consultant boolean NOT NULL DEFAULT false,
  perks text[] NOT NULL DEFAULT '{}' CHECK (cardinality(perks) <= 20),
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  UNIQUE (org_id, code),
  -- Deferred, so a ladder can be reordered in one transaction.
  CONSTRAINT tier_level_org_id_rank_key UNIQUE (org_id, rank) DEFERRABLE INITIALLY DEFERRED,
  UNIQUE (org_id, id)
);

-- A tier is reached when any one of its rules is met: rolling spend of at least min_spend_minor AND at least
-- min_tasks counted behaviour tasks (e.g. Gold: ¥20,000 and 0 tasks, or ¥12,000 and 3 tasks).
CREATE TABLE tier_qualification (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  tier_id uuid NOT NULL,
  min_spend_minor bigint NOT NULL CHECK (min_spend_minor >= 0),
  min_tasks integer NOT NULL DEFAULT 0 CHECK (min_tasks BETWEEN 0 AND 1000),
  FOREIGN KEY (org_id, tier_id) REFERENCES tier_level (org_id, id) ON DELETE CASCADE,
  UNIQUE (tier_id, min_spend_minor, min_tasks)
);
CREATE INDEX tier_qualification_org_id_idx ON tier_qualification (org_id);

-- Behaviour tasks. event_type maps another module's event to the task (at most one active task per event type);
-- customer_field names the payload field holding the customer who did it (e.g. the referrer of a referral).
CREATE TABLE tier_task (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  code text NOT NULL CHECK (code ~ '^[A-Z][A-Z0-9_]{0,39}$'),
  name text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 120),
  description text CHECK (description IS NULL OR length(description) <= 1000),
  event_type text CHECK (event_type IS NULL OR event_type ~ '^[a-z][A-Za-z0-9]*\.[a-z][A-Za-z0-9]*$'),
  customer_field text NOT NULL DEFAULT 'customerId' CHECK (customer_field ~ '^[A-Za-z][A-Za-z0-9_]{0,39}$'),
  -- Completions of this task counted per qualification window (NULL: all of them).
  max_per_window integer CHECK (max_per_window BETWEEN 1 AND 1000),
  active boolean NOT NULL DEFAULT true,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  UNIQUE (org_id, code),
  UNIQUE (org_id, id)
);
CREATE UNIQUE INDEX tier_task_org_id_event_type_key ON tier_task (org_id, event_type) WHERE event_type IS NOT NULL AND active;

-- Append-only. dedupe_key makes "one completion per source" a database fact (an event announced twice, a retry).
CREATE TABLE tier_task_completion (
  id bigserial PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES organization(id),
  customer_id uuid NOT NULL REFERENCES customer(id),
  task_id uuid NOT NULL,
  occurred_at timestamptz(3) NOT NULL,
  source tier_task_source NOT NULL,
  source_ref text,
  dedupe_key text NOT NULL,
  recorded_by text NOT NULL,
  note text CHECK (note IS NULL OR length(note) <= 500),
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  FOREIGN KEY (org_id, task_id) REFERENCES tier_task (org_id, id),
  UNIQUE (org_id, dedupe_key)
);
CREATE INDEX tier_task_completion_customer_id_occurred_at_idx ON tier_task_completion (customer_id, occurred_at);

-- A member's tier. The earned tier follows qualification (up at once, down only after the grace period); an
-- active override (until override_until) takes its place for that time. below_since starts the grace period.
CREATE TABLE tier_state (
  customer_id uuid PRIMARY KEY REFERENCES customer(id),
  org_id uuid NOT NULL REFERENCES organization(id),
  earned_tier_id uuid,
  earned_since timestamptz(3),
  below_since timestamptz(3),
  override_tier_id uuid,
  override_until timestamptz(3),
  override_reason text,
  override_by text,
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  FOREIGN KEY (org_id, earned_tier_id) REFERENCES tier_level (org_id, id),
  FOREIGN KEY (org_id, override_tier_id) REFERENCES tier_level (org_id, id),
  CHECK ((earned_tier_id IS NULL) = (earned_since IS NULL)),
  CHECK (below_since IS NULL OR earned_tier_id IS NOT NULL),
  CHECK ((override_until IS NULL) = (override_reason IS NULL) AND (override_until IS NULL) = (override_by IS NULL)),
  CHECK (override_until IS NOT NULL OR override_tier_id IS NULL)
);
CREATE INDEX tier_state_org_id_idx ON tier_state (org_id);
CREATE INDEX tier_state_override_until_idx ON tier_state (override_until) WHERE override_until IS NOT NULL;

-- Append-only history of every change: UPGRADE / DOWNGRADE move the earned tier (from → to); OVERRIDE_SET and
-- OVERRIDE_ENDED start and end an override. effective_tier_id is the tier the member holds after the change.
CREATE TABLE tier_change (
  id bigserial PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES organization(id),
  customer_id uuid NOT NULL REFERENCES customer(id),
  kind tier_change_kind NOT NULL,
  from_tier_id uuid,
  to_tier_id uuid,
  effective_tier_id uuid,
  reason text NOT NULL CHECK (length(btrim(reason)) BETWEEN 1 AND 1000),
  spend_minor bigint,
  tasks integer,
  override_until timestamptz(3),
  actor text NOT NULL,
  trigger text,
  trigger_ref text,
  effective_at timestamptz(3) NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  FOREIGN KEY (org_id, from_tier_id) REFERENCES tier_level (org_id, id),
  FOREIGN KEY (org_id, to_tier_id) REFERENCES tier_level (org_id, id),
  FOREIGN KEY (org_id, effective_tier_id) REFERENCES tier_level (org_id, id),
  CHECK (kind <> 'OVERRIDE_SET' OR override_until IS NOT NULL),
  CHECK (kind NOT IN ('UPGRADE', 'DOWNGRADE') OR from_tier_id IS DISTINCT FROM to_tier_id)
);
CREATE INDEX tier_change_customer_id_effective_at_id_idx ON tier_change (customer_id, effective_at DESC, id DESC);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['tier_level', 'tier_qualification', 'tier_task', 'tier_task_completion', 'tier_state',
    'tier_change']
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I TO crm_app USING (org_id = app_current_org())'
      ' WITH CHECK (org_id = app_current_org())', t);
  END LOOP;
END $$;

-- The ladder and tasks are managed through the API; completions and history are never rewritten.
GRANT SELECT, INSERT, UPDATE, DELETE ON tier_level, tier_qualification TO crm_app;
GRANT SELECT, INSERT, UPDATE ON tier_task, tier_state TO crm_app;
GRANT SELECT, INSERT ON tier_task_completion, tier_change TO crm_app;
GRANT USAGE ON SEQUENCE tier_task_completion_id_seq, tier_change_id_seq TO crm_app;
