-- Medical-aesthetic packages and partner clinics (plugins/packages).
--
-- Course packages are a ledger: sessions sold per service, an append-only list of consumed and refunded sessions,
-- and a remaining count the database keeps equal to it (never negative). Joint treatment plans belong to the chain;
-- a partner clinic reads them (and records outcomes on its own steps) only while the partnership is ACTIVE and the
-- customer's newest PARTNER_SHARING consent naming that clinic is granted. That check is a SQL function evaluated
-- by the row-level security policies at query time, so withdrawing consent cuts access for the very next statement.
-- Core tables (customer, skin_profile, visit, …) stay invisible to the clinic: the shared customer fields come from
-- a SECURITY DEFINER function that performs the same check.

CREATE TYPE clinic_partnership_status AS ENUM ('PROPOSED', 'ACTIVE', 'SUSPENDED', 'ENDED');
CREATE TYPE customer_package_status AS ENUM ('ACTIVE', 'FROZEN', 'REFUNDED');
CREATE TYPE package_entry_kind AS ENUM ('CONSUME', 'REFUND');
CREATE TYPE package_adjustment_kind AS ENUM ('FREEZE', 'UNFREEZE', 'EXTEND');
CREATE TYPE treatment_plan_status AS ENUM ('ACTIVE', 'COMPLETED', 'CANCELLED');
CREATE TYPE treatment_step_location AS ENUM ('SALON', 'CLINIC');
CREATE TYPE treatment_step_status AS ENUM ('PLANNED', 'SCHEDULED', 'DONE', 'CANCELLED');
CREATE TYPE contraindication_flag_status AS ENUM ('OPEN', 'RESOLVED');

-- Follow-up offsets: 1 to 20 distinct days after the anchor, ascending, each 0–730 (empty allowed where noted).
CREATE FUNCTION packages_valid_offsets(offsets integer[], allow_empty boolean) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (cardinality(offsets) = 0 AND allow_empty)
      OR (cardinality(offsets) BETWEEN 1 AND 20
          AND array_position(offsets, NULL) IS NULL
          AND offsets = ARRAY(SELECT DISTINCT o FROM unnest(offsets) AS o ORDER BY o)
          AND offsets[1] >= 0 AND offsets[cardinality(offsets)] <= 730)
$$;

-- --- Partnerships ----------------------------------------------------------------------------------------------

-- A chain (org_id) and a clinic, agreed by both owners: proposed by one, accepted by the other. Both read the row.
CREATE TABLE clinic_partnership (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  clinic_org_id uuid NOT NULL REFERENCES organization(id),
  status clinic_partnership_status NOT NULL DEFAULT 'PROPOSED',
  proposed_by_org_id uuid NOT NULL REFERENCES organization(id),
  proposed_by text NOT NULL,
  note text CHECK (length(note) <= 1000),
  accepted_at timestamptz(3),
  accepted_by text,
  suspended_at timestamptz(3),
  suspended_by_org_id uuid REFERENCES organization(id),
  ended_at timestamptz(3),
  ended_by text,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  CHECK (org_id <> clinic_org_id),
  CHECK (proposed_by_org_id = org_id OR proposed_by_org_id = clinic_org_id),
  CHECK ((status = 'SUSPENDED') = (suspended_by_org_id IS NOT NULL)),
  CHECK (status = 'PROPOSED' OR status = 'ENDED' OR accepted_at IS NOT NULL),
  CHECK ((status = 'ENDED') = (ended_at IS NOT NULL))
);
-- At most one open (not ended) partnership per pair; an ended one stays as history.
CREATE UNIQUE INDEX clinic_partnership_open_pair_idx ON clinic_partnership (org_id, clinic_org_id) WHERE status <> 'ENDED';
CREATE INDEX clinic_partnership_clinic_org_id_idx ON clinic_partnership (clinic_org_id);

-- Kinds (a chain and a clinic) and the agreement rules, whoever writes: the proposer cannot accept its own
-- proposal, only the party that suspended may resume, ENDED is final. SECURITY DEFINER to read both organizations.
CREATE FUNCTION packages_partnership_guard() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, public AS $$
DECLARE
  actor uuid := app_current_org();
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF (SELECT kind FROM organization WHERE id = NEW.org_id) IS DISTINCT FROM 'CHAIN'
       OR (SELECT kind FROM organization WHERE id = NEW.clinic_org_id) IS DISTINCT FROM 'CLINIC' THEN
      RAISE EXCEPTION 'a partnership joins a chain and a clinic' USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.status <> 'PROPOSED' AND actor IS NOT NULL THEN
      RAISE EXCEPTION 'a partnership starts as a proposal' USING ERRCODE = 'check_violation';
    END IF;
    IF actor IS NOT NULL AND NEW.proposed_by_org_id <> actor THEN
      RAISE EXCEPTION 'a partnership is proposed by the writing organization' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.id <> OLD.id OR NEW.org_id <> OLD.org_id OR NEW.clinic_org_id <> OLD.clinic_org_id
     OR NEW.proposed_by_org_id <> OLD.proposed_by_org_id OR NEW.proposed_by <> OLD.proposed_by
     OR NEW.created_at <> OLD.created_at THEN
    RAISE EXCEPTION 'the parties of a partnership cannot change' USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status = OLD.status OR actor IS NULL THEN
    RETURN NEW;
  END IF;
  IF OLD.status = 'ENDED'
     OR (OLD.status = 'PROPOSED' AND NEW.status = 'SUSPENDED')
     OR (OLD.status = 'PROPOSED' AND NEW.status = 'ACTIVE' AND actor = OLD.proposed_by_org_id)
     OR (OLD.status = 'SUSPENDED' AND NEW.status = 'ACTIVE' AND actor <> OLD.suspended_by_org_id)
     OR (NEW.status = 'PROPOSED') THEN
    RAISE EXCEPTION 'partnership cannot go from % to % by this party', OLD.status, NEW.status USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER clinic_partnership_guard BEFORE INSERT OR UPDATE ON clinic_partnership
  FOR EACH ROW EXECUTE FUNCTION packages_partnership_guard();

-- May the current organization (the chain itself, or the named clinic) see this customer's shared plan data?
-- For the clinic: the partnership is ACTIVE and the newest PARTNER_SHARING consent naming the clinic is granted
-- (consent is append-only; on a tie in time a withdrawal wins). SECURITY DEFINER: the clinic cannot read either
-- table itself. Answers only for the parties themselves, so it reveals nothing to anyone else.
CREATE FUNCTION packages_clinic_access(p_org_id uuid, p_clinic_org_id uuid, p_customer_id uuid) RETURNS boolean
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT coalesce(
    p_clinic_org_id IS NOT NULL
    AND app_current_org() IN (p_org_id, p_clinic_org_id)
    AND EXISTS (SELECT 1 FROM clinic_partnership p
                 WHERE p.org_id = p_org_id AND p.clinic_org_id = p_clinic_org_id AND p.status = 'ACTIVE')
    AND (SELECT c.granted FROM consent c
          WHERE c.customer_id = p_customer_id AND c.org_id = p_org_id
            AND c.purpose = 'PARTNER_SHARING' AND c.partner_org_id = p_clinic_org_id
          ORDER BY c.recorded_at DESC, c.granted ASC
          LIMIT 1),
    false)
$$;

-- --- Follow-up templates ---------------------------------------------------------------------------------------

CREATE TABLE follow_up_template (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  name text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 120),
  offsets_days integer[] NOT NULL CHECK (packages_valid_offsets(offsets_days, false)),
  active boolean NOT NULL DEFAULT true,
  created_at timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX follow_up_template_org_id_idx ON follow_up_template (org_id);

-- --- Package templates and customer packages -------------------------------------------------------------------

CREATE TABLE package_template (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  name text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 120),
  description text CHECK (length(description) <= 1000),
  price_minor integer NOT NULL CHECK (price_minor >= 0),
  validity_months integer NOT NULL CHECK (validity_months BETWEEN 1 AND 120),
  trial boolean NOT NULL DEFAULT false,
  follow_up_days integer[] NOT NULL DEFAULT '{}' CHECK (packages_valid_offsets(follow_up_days, true)),
  active boolean NOT NULL DEFAULT true,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  UNIQUE (id, org_id)
);
CREATE INDEX package_template_org_id_idx ON package_template (org_id);

CREATE TABLE package_template_service (
  template_id uuid NOT NULL,
  org_id uuid NOT NULL REFERENCES organization(id),
  service_id uuid NOT NULL REFERENCES service(id),
  sessions integer NOT NULL CHECK (sessions BETWEEN 1 AND 100),
  PRIMARY KEY (template_id, service_id),
  FOREIGN KEY (template_id, org_id) REFERENCES package_template (id, org_id)
);

-- A course bought by a customer, sold at a store on a completed visit; valid until expires_at (the end of the
-- local day `validity_months` after the sale, in the store's time zone). Freezing stops the clock.
CREATE TABLE customer_package (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  customer_id uuid NOT NULL REFERENCES customer(id),
  template_id uuid NOT NULL,
  store_id uuid NOT NULL REFERENCES store(id),
  visit_id uuid NOT NULL REFERENCES visit(id),
  name text NOT NULL,
  trial boolean NOT NULL DEFAULT false,
  price_minor integer NOT NULL CHECK (price_minor >= 0),
  status customer_package_status NOT NULL DEFAULT 'ACTIVE',
  purchased_at timestamptz(3) NOT NULL DEFAULT now(),
  expires_at timestamptz(3) NOT NULL,
  frozen_at timestamptz(3),
  refunded_at timestamptz(3),
  follow_up_days integer[] NOT NULL DEFAULT '{}' CHECK (packages_valid_offsets(follow_up_days, true)),
  sold_by text NOT NULL,
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  UNIQUE (id, org_id),
  FOREIGN KEY (template_id, org_id) REFERENCES package_template (id, org_id),
  CHECK (expires_at > purchased_at),
  CHECK ((status = 'FROZEN') = (frozen_at IS NOT NULL)),
  CHECK ((status = 'REFUNDED') = (refunded_at IS NOT NULL))
);
-- A trial pack once per customer and template.
CREATE UNIQUE INDEX customer_package_one_trial_idx ON customer_package (customer_id, template_id) WHERE trial;
CREATE INDEX customer_package_customer_id_purchased_at_idx ON customer_package (customer_id, purchased_at DESC);
CREATE INDEX customer_package_org_id_store_id_idx ON customer_package (org_id, store_id);
CREATE INDEX customer_package_visit_id_idx ON customer_package (visit_id);

-- Sessions per service. `value_minor` is the share of the price these sessions carry (allocated at the sale by
-- list price, summing to the price exactly); `sessions_remaining` is kept by package_apply_entry, never below 0.
CREATE TABLE customer_package_service (
  customer_package_id uuid NOT NULL,
  org_id uuid NOT NULL REFERENCES organization(id),
  service_id uuid NOT NULL REFERENCES service(id),
  sessions_total integer NOT NULL CHECK (sessions_total BETWEEN 1 AND 1000),
  sessions_remaining integer NOT NULL DEFAULT 0
    CONSTRAINT package_sessions_not_negative CHECK (sessions_remaining >= 0),
  value_minor integer NOT NULL CHECK (value_minor >= 0),
  PRIMARY KEY (customer_package_id, service_id),
  UNIQUE (customer_package_id, service_id, org_id),
  FOREIGN KEY (customer_package_id, org_id) REFERENCES customer_package (id, org_id),
  CHECK (sessions_remaining <= sessions_total)
);

CREATE TABLE package_refund (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  customer_package_id uuid NOT NULL UNIQUE,
  store_id uuid NOT NULL REFERENCES store(id),
  sessions integer NOT NULL CHECK (sessions >= 0),
  amount_minor integer NOT NULL CHECK (amount_minor >= 0),
  reason text NOT NULL CHECK (length(btrim(reason)) BETWEEN 1 AND 500),
  actor text NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  FOREIGN KEY (customer_package_id, org_id) REFERENCES customer_package (id, org_id)
);

-- The sessions ledger (append-only): every consumed or refunded session, with the money value it carried.
CREATE TABLE package_session_entry (
  id bigserial PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES organization(id),
  customer_package_id uuid NOT NULL,
  service_id uuid NOT NULL,
  customer_id uuid NOT NULL REFERENCES customer(id),
  kind package_entry_kind NOT NULL,
  sessions integer NOT NULL CHECK (sessions > 0),
  -- Computed by package_apply_entry, whatever the writer sends.
  value_minor integer NOT NULL DEFAULT 0 CHECK (value_minor >= 0),
  visit_id uuid REFERENCES visit(id),
  store_id uuid NOT NULL REFERENCES store(id),
  refund_id uuid REFERENCES package_refund(id),
  actor text NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  FOREIGN KEY (customer_package_id, service_id, org_id)
    REFERENCES customer_package_service (customer_package_id, service_id, org_id),
  CHECK ((kind = 'CONSUME') = (visit_id IS NOT NULL)),
  CHECK ((kind = 'REFUND') = (refund_id IS NOT NULL))
);
CREATE INDEX package_session_entry_package_idx ON package_session_entry (customer_package_id, created_at DESC, id DESC);
CREATE INDEX package_session_entry_org_id_created_at_idx ON package_session_entry (org_id, created_at);
CREATE INDEX package_session_entry_visit_id_idx ON package_session_entry (visit_id) WHERE visit_id IS NOT NULL;

-- Freeze, unfreeze and extension history (append-only).
CREATE TABLE package_adjustment (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  customer_package_id uuid NOT NULL,
  kind package_adjustment_kind NOT NULL,
  previous_expires_at timestamptz(3) NOT NULL,
  new_expires_at timestamptz(3) NOT NULL,
  reason text NOT NULL CHECK (length(btrim(reason)) BETWEEN 1 AND 500),
  actor text NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  FOREIGN KEY (customer_package_id, org_id) REFERENCES customer_package (id, org_id),
  CHECK (kind = 'FREEZE' OR new_expires_at >= previous_expires_at)
);
CREATE INDEX package_adjustment_package_idx ON package_adjustment (customer_package_id, created_at);

-- --- Joint treatment plans -------------------------------------------------------------------------------------

CREATE TABLE treatment_plan (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  customer_id uuid NOT NULL REFERENCES customer(id),
  store_id uuid NOT NULL REFERENCES store(id),
  clinic_org_id uuid REFERENCES organization(id),
  title text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 200),
  goal text CHECK (length(goal) <= 2000),
  status treatment_plan_status NOT NULL DEFAULT 'ACTIVE',
  created_by text NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  closed_at timestamptz(3),
  UNIQUE (id, org_id),
  CHECK (clinic_org_id IS DISTINCT FROM org_id),
  CHECK ((status = 'ACTIVE') = (closed_at IS NULL))
);
CREATE INDEX treatment_plan_customer_id_idx ON treatment_plan (customer_id, created_at DESC);
CREATE INDEX treatment_plan_org_id_store_id_idx ON treatment_plan (org_id, store_id, created_at DESC);
CREATE INDEX treatment_plan_clinic_org_id_idx ON treatment_plan (clinic_org_id, created_at DESC) WHERE clinic_org_id IS NOT NULL;

-- Steps carry the plan's customer and clinic (copied on insert, never changed) so the policies need no join.
CREATE TABLE treatment_plan_step (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  plan_id uuid NOT NULL,
  customer_id uuid NOT NULL REFERENCES customer(id),
  clinic_org_id uuid REFERENCES organization(id),
  position integer NOT NULL CHECK (position >= 0),
  location treatment_step_location NOT NULL,
  title text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 200),
  -- A service of the organization performing the step (the chain's for SALON, the clinic's for CLINIC).
  service_id uuid REFERENCES service(id),
  -- The salon visit booked for a SALON step; completing that visit completes the step.
  visit_id uuid REFERENCES visit(id),
  status treatment_step_status NOT NULL DEFAULT 'PLANNED',
  scheduled_at timestamptz(3),
  follow_up_days integer[] NOT NULL DEFAULT '{}' CHECK (packages_valid_offsets(follow_up_days, true)),
  outcome text CHECK (length(outcome) <= 4000),
  aftercare_instructions text CHECK (length(aftercare_instructions) <= 4000),
  completed_at timestamptz(3),
  completed_by text,
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  UNIQUE (plan_id, position),
  FOREIGN KEY (plan_id, org_id) REFERENCES treatment_plan (id, org_id),
  CHECK (location = 'SALON' OR clinic_org_id IS NOT NULL),
  CHECK (location = 'SALON' OR visit_id IS NULL),
  CHECK ((status = 'DONE') = (completed_at IS NOT NULL)),
  CHECK ((completed_at IS NULL) = (completed_by IS NULL)),
  CHECK (status <> 'SCHEDULED' OR scheduled_at IS NOT NULL)
);
CREATE INDEX treatment_plan_step_visit_id_idx ON treatment_plan_step (visit_id) WHERE visit_id IS NOT NULL;

CREATE FUNCTION packages_plan_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    -- A plan names a clinic only under an active partnership (read as the writer: the chain sees its own).
    IF NEW.clinic_org_id IS NOT NULL AND NOT EXISTS (
      SELECT 1 FROM clinic_partnership
       WHERE org_id = NEW.org_id AND clinic_org_id = NEW.clinic_org_id AND status = 'ACTIVE') THEN
      RAISE EXCEPTION 'no active partnership with this clinic' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.id <> OLD.id OR NEW.org_id <> OLD.org_id OR NEW.customer_id <> OLD.customer_id
     OR NEW.clinic_org_id IS DISTINCT FROM OLD.clinic_org_id OR NEW.created_at <> OLD.created_at THEN
    RAISE EXCEPTION 'a treatment plan keeps its customer and clinic' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER treatment_plan_guard BEFORE INSERT OR UPDATE ON treatment_plan
  FOR EACH ROW EXECUTE FUNCTION packages_plan_guard();

-- Runs with the writer's rights (row-level security applies): a service or visit the writer cannot see fails.
CREATE FUNCTION packages_step_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  actor uuid := app_current_org();
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT p.customer_id, p.clinic_org_id INTO NEW.customer_id, NEW.clinic_org_id
      FROM treatment_plan p WHERE p.id = NEW.plan_id AND p.org_id = NEW.org_id;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'treatment plan % not found', NEW.plan_id USING ERRCODE = 'foreign_key_violation';
    END IF;
  ELSE
    IF NEW.id <> OLD.id OR NEW.org_id <> OLD.org_id OR NEW.plan_id <> OLD.plan_id OR NEW.customer_id <> OLD.customer_id
       OR NEW.clinic_org_id IS DISTINCT FROM OLD.clinic_org_id OR NEW.location <> OLD.location
       OR NEW.position <> OLD.position THEN
      RAISE EXCEPTION 'a plan step keeps its plan, place and position' USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status IN ('DONE', 'CANCELLED') AND NEW.status <> OLD.status THEN
      RAISE EXCEPTION 'a % step cannot change its status', OLD.status USING ERRCODE = 'check_violation';
    END IF;
    -- The partner clinic (through its own policy) changes only what it does: schedule, status, outcome, service.
    IF actor IS NOT NULL AND actor <> OLD.org_id
       AND (NEW.title <> OLD.title OR NEW.visit_id IS DISTINCT FROM OLD.visit_id
            OR NEW.follow_up_days <> OLD.follow_up_days) THEN
      RAISE EXCEPTION 'the clinic may not change this field of a step' USING ERRCODE = 'insufficient_privilege';
    END IF;
  END IF;
  IF NEW.service_id IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.service_id IS DISTINCT FROM OLD.service_id)
     AND NOT EXISTS (SELECT 1 FROM service s WHERE s.id = NEW.service_id
                       AND s.org_id = CASE WHEN NEW.location = 'CLINIC' THEN NEW.clinic_org_id ELSE NEW.org_id END) THEN
    RAISE EXCEPTION 'service % is not offered where the step takes place', NEW.service_id USING ERRCODE = 'foreign_key_violation';
  END IF;
  IF NEW.visit_id IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.visit_id IS DISTINCT FROM OLD.visit_id)
     AND NOT EXISTS (SELECT 1 FROM visit v WHERE v.id = NEW.visit_id AND v.org_id = NEW.org_id
                       AND v.customer_id = NEW.customer_id) THEN
    RAISE EXCEPTION 'visit % is not this customer''s', NEW.visit_id USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER treatment_plan_step_guard BEFORE INSERT OR UPDATE ON treatment_plan_step
  FOR EACH ROW EXECUTE FUNCTION packages_step_guard();

-- --- Follow-up tasks -------------------------------------------------------------------------------------------

-- Generated by the database, once per plan step (when it is done) or per course (when its last session is used):
-- one task per offset, due on the anchor's local date in the store's time zone plus the offset; overdue from
-- due_at, the end of that local day.
CREATE TABLE follow_up_task (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  customer_id uuid NOT NULL REFERENCES customer(id),
  store_id uuid NOT NULL REFERENCES store(id),
  plan_step_id uuid REFERENCES treatment_plan_step(id),
  customer_package_id uuid REFERENCES customer_package(id),
  offset_days integer NOT NULL CHECK (offset_days BETWEEN 0 AND 730),
  title text NOT NULL,
  due_on date NOT NULL,
  due_at timestamptz(3) NOT NULL,
  completed_at timestamptz(3),
  completed_by text,
  note text CHECK (length(note) <= 2000),
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  CHECK (num_nonnulls(plan_step_id, customer_package_id) = 1),
  CHECK ((completed_at IS NULL) = (completed_by IS NULL)),
  UNIQUE (plan_step_id, offset_days),
  UNIQUE (customer_package_id, offset_days)
);
CREATE INDEX follow_up_task_open_idx ON follow_up_task (org_id, store_id, due_at) WHERE completed_at IS NULL;
CREATE INDEX follow_up_task_customer_id_idx ON follow_up_task (customer_id, due_on);

CREATE FUNCTION packages_step_follow_ups() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, public AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.status = 'DONE' THEN
    RETURN NULL;
  END IF;
  INSERT INTO follow_up_task (org_id, customer_id, store_id, plan_step_id, offset_days, title, due_on, due_at)
  SELECT p.org_id, p.customer_id, p.store_id, NEW.id, d.offset_days,
         format('Day %s follow-up: %s', d.offset_days, NEW.title),
         local.day + d.offset_days,
         (local.day + d.offset_days + 1)::timestamp AT TIME ZONE s.timezone
    FROM treatment_plan p
    JOIN store s ON s.id = p.store_id
    CROSS JOIN LATERAL (SELECT (NEW.completed_at AT TIME ZONE s.timezone)::date AS day) local
    CROSS JOIN unnest(NEW.follow_up_days) AS d(offset_days)
   WHERE p.id = NEW.plan_id
  ON CONFLICT (plan_step_id, offset_days) DO NOTHING;
  RETURN NULL;
END $$;
CREATE TRIGGER treatment_plan_step_follow_ups AFTER INSERT OR UPDATE OF status ON treatment_plan_step
  FOR EACH ROW WHEN (NEW.status = 'DONE') EXECUTE FUNCTION packages_step_follow_ups();

-- --- The sessions ledger keeps the remaining counts ------------------------------------------------------------

-- Starts every package line full, whatever the writer sends.
CREATE FUNCTION packages_fill_line() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.sessions_remaining := NEW.sessions_total;
  RETURN NEW;
END $$;
CREATE TRIGGER customer_package_service_fill BEFORE INSERT ON customer_package_service
  FOR EACH ROW EXECUTE FUNCTION packages_fill_line();

-- Each entry takes its sessions off the line in the same statement (the CHECK refuses going below zero) and
-- carries the value of exactly those sessions: floor(value × used / total) differences, so a line's entries plus
-- what remains always add up to its value. A consumption needs an active, unexpired package; the course's
-- follow-ups are generated when its last session is consumed.
CREATE FUNCTION packages_apply_entry() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, public AS $$
DECLARE
  pkg customer_package%ROWTYPE;
  line_total integer;
  line_remaining integer;
  line_value bigint;
  used_after bigint;
BEGIN
  SELECT * INTO pkg FROM customer_package WHERE id = NEW.customer_package_id AND org_id = NEW.org_id;
  IF NEW.kind = 'CONSUME' AND (pkg.status <> 'ACTIVE' OR pkg.expires_at <= now()) THEN
    RAISE EXCEPTION 'package % cannot be used (%)', pkg.id, pkg.status USING ERRCODE = 'check_violation';
  END IF;
  UPDATE customer_package_service SET sessions_remaining = sessions_remaining - NEW.sessions
   WHERE customer_package_id = NEW.customer_package_id AND service_id = NEW.service_id
   RETURNING sessions_total, sessions_remaining, value_minor INTO line_total, line_remaining, line_value;
  used_after := line_total - line_remaining;
  NEW.value_minor := (line_value * used_after / line_total) - (line_value * (used_after - NEW.sessions) / line_total);
  NEW.customer_id := pkg.customer_id;
  IF NEW.kind = 'CONSUME' AND cardinality(pkg.follow_up_days) > 0 AND NOT EXISTS (
       SELECT 1 FROM customer_package_service WHERE customer_package_id = pkg.id AND sessions_remaining > 0) THEN
    INSERT INTO follow_up_task (org_id, customer_id, store_id, customer_package_id, offset_days, title, due_on, due_at)
    SELECT pkg.org_id, pkg.customer_id, NEW.store_id, pkg.id, d.offset_days,
           format('Day %s follow-up: %s completed', d.offset_days, pkg.name),
           local.day + d.offset_days,
           (local.day + d.offset_days + 1)::timestamp AT TIME ZONE s.timezone
      FROM store s
      CROSS JOIN LATERAL (SELECT (NEW.created_at AT TIME ZONE s.timezone)::date AS day) local
      CROSS JOIN unnest(pkg.follow_up_days) AS d(offset_days)
     WHERE s.id = NEW.store_id
    ON CONFLICT (customer_package_id, offset_days) DO NOTHING;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER package_session_entry_apply BEFORE INSERT ON package_session_entry
  FOR EACH ROW EXECUTE FUNCTION packages_apply_entry();

-- --- Contraindications ------------------------------------------------------------------------------------------

-- Staff acknowledged that a service's contraindication tags match the customer's allergies or sensitivities.
CREATE TABLE contraindication_ack (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  customer_id uuid NOT NULL REFERENCES customer(id),
  service_id uuid NOT NULL REFERENCES service(id),
  tags text[] NOT NULL CHECK (cardinality(tags) > 0),
  visit_id uuid REFERENCES visit(id),
  note text CHECK (length(note) <= 1000),
  acknowledged_by text NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  valid_until timestamptz(3) NOT NULL,
  CHECK (valid_until > created_at)
);
CREATE INDEX contraindication_ack_customer_service_idx ON contraindication_ack (customer_id, service_id, created_at DESC);

-- A booking of a risky service without a valid acknowledgement, raised once per (visit, service).
CREATE TABLE contraindication_flag (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  visit_id uuid NOT NULL REFERENCES visit(id),
  customer_id uuid NOT NULL REFERENCES customer(id),
  store_id uuid NOT NULL REFERENCES store(id),
  service_id uuid NOT NULL REFERENCES service(id),
  tags text[] NOT NULL CHECK (cardinality(tags) > 0),
  status contraindication_flag_status NOT NULL DEFAULT 'OPEN',
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  resolved_at timestamptz(3),
  resolved_by text,
  ack_id uuid REFERENCES contraindication_ack(id),
  UNIQUE (visit_id, service_id),
  CHECK ((status = 'RESOLVED') = (resolved_at IS NOT NULL))
);
CREATE INDEX contraindication_flag_open_idx ON contraindication_flag (org_id, store_id, created_at) WHERE status = 'OPEN';

-- --- Row-level security -----------------------------------------------------------------------------------------

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['clinic_partnership', 'follow_up_template', 'package_template', 'package_template_service',
    'customer_package', 'customer_package_service', 'package_refund', 'package_session_entry', 'package_adjustment',
    'treatment_plan', 'treatment_plan_step', 'follow_up_task', 'contraindication_ack', 'contraindication_flag']
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I TO crm_app USING (org_id = app_current_org())'
      ' WITH CHECK (org_id = app_current_org())', t);
  END LOOP;
END $$;

-- The clinic side of a partnership reads it and writes its own decisions (the guard trigger checks which).
CREATE POLICY clinic_party ON clinic_partnership TO crm_app
  USING (clinic_org_id = app_current_org()) WITH CHECK (clinic_org_id = app_current_org());
-- The partner clinic reads a plan and its steps while it has access (evaluated per statement: no caching).
CREATE POLICY clinic_party_read ON treatment_plan FOR SELECT TO crm_app
  USING (clinic_org_id = app_current_org() AND packages_clinic_access(org_id, clinic_org_id, customer_id));
CREATE POLICY clinic_party_read ON treatment_plan_step FOR SELECT TO crm_app
  USING (clinic_org_id = app_current_org() AND packages_clinic_access(org_id, clinic_org_id, customer_id));
-- … and records schedule and outcome on the steps at the clinic, while it has access.
CREATE POLICY clinic_party_update ON treatment_plan_step FOR UPDATE TO crm_app
  USING (clinic_org_id = app_current_org() AND location = 'CLINIC'
         AND packages_clinic_access(org_id, clinic_org_id, customer_id))
  WITH CHECK (clinic_org_id = app_current_org() AND location = 'CLINIC'
              AND packages_clinic_access(org_id, clinic_org_id, customer_id));

-- The customer fields a plan shares with the partner clinic — name, skin type, allergies and sensitivities, and
-- nothing else — for plans the caller owns or may access as their clinic. SECURITY DEFINER: the clinic has no
-- rights on customer or skin_profile, and gets none.
CREATE FUNCTION packages_shared_profiles(p_plan_ids uuid[])
  RETURNS TABLE (plan_id uuid, customer_name text, skin_type text, allergies text[], sensitivities text[])
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
  SELECT p.id, c.name, sp.skin_type::text, coalesce(sp.allergies, '{}'), coalesce(sp.sensitivities, '{}')
    FROM treatment_plan p
    JOIN customer c ON c.id = p.customer_id AND c.org_id = p.org_id
    LEFT JOIN skin_profile sp ON sp.customer_id = p.customer_id AND sp.org_id = p.org_id
   WHERE p.id = ANY(p_plan_ids)
     AND (p.org_id = app_current_org()
          OR (p.clinic_org_id = app_current_org() AND packages_clinic_access(p.org_id, p.clinic_org_id, p.customer_id)))
$$;

REVOKE ALL ON FUNCTION packages_clinic_access(uuid, uuid, uuid), packages_shared_profiles(uuid[]),
  packages_partnership_guard(), packages_step_follow_ups(), packages_apply_entry() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION packages_clinic_access(uuid, uuid, uuid), packages_shared_profiles(uuid[]),
  packages_valid_offsets(integer[], boolean) TO crm_app;

GRANT SELECT, INSERT ON clinic_partnership TO crm_app;
GRANT UPDATE (status, note, accepted_at, accepted_by, suspended_at, suspended_by_org_id, ended_at, ended_by, updated_at)
  ON clinic_partnership TO crm_app;
GRANT SELECT, INSERT ON follow_up_template, package_template, package_template_service TO crm_app;
GRANT UPDATE (active) ON follow_up_template, package_template TO crm_app;
GRANT SELECT, INSERT ON customer_package TO crm_app;
-- Locking a package (SELECT … FOR UPDATE serializes its consumptions) needs UPDATE on some column: these only.
GRANT UPDATE (status, expires_at, frozen_at, refunded_at, updated_at) ON customer_package TO crm_app;
-- Remaining sessions are written by the ledger trigger only.
GRANT SELECT, INSERT (customer_package_id, org_id, service_id, sessions_total, value_minor) ON customer_package_service TO crm_app;
GRANT SELECT, INSERT ON package_refund, package_session_entry, package_adjustment, contraindication_ack TO crm_app;
GRANT USAGE ON SEQUENCE package_session_entry_id_seq TO crm_app;
GRANT SELECT, INSERT ON treatment_plan, treatment_plan_step TO crm_app;
GRANT UPDATE (title, goal, status, closed_at, updated_at) ON treatment_plan TO crm_app;
GRANT UPDATE (title, service_id, visit_id, status, scheduled_at, outcome, aftercare_instructions, completed_at,
  completed_by, updated_at) ON treatment_plan_step TO crm_app;
-- Follow-up tasks are generated by the database; the application completes them.
GRANT SELECT ON follow_up_task TO crm_app;
GRANT UPDATE (completed_at, completed_by, note) ON follow_up_task TO crm_app;
GRANT SELECT, INSERT ON contraindication_flag TO crm_app;
GRANT UPDATE (status, resolved_at, resolved_by, ack_id) ON contraindication_flag TO crm_app;
