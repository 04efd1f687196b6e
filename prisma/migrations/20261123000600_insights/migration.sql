-- HQ insights and lifecycle care plugin. Metrics are computed by the application in SQL over core's completed visits
-- (the indexes below serve those scans); this migration holds the plugin's own data: per-organization thresholds,
-- saved segments (rules as validated JSON), and care tasks, each created at most once per (kind, customer, period)
-- because its dedupe key is unique — a job or an event handler that runs twice finds the task already there.

CREATE TYPE insights_care_task_kind AS ENUM ('WIN_BACK', 'BIRTHDAY', 'REPURCHASE', 'FEEDBACK', 'FOLLOW_UP');
CREATE TYPE insights_care_task_status AS ENUM ('OPEN', 'SNOOZED', 'DONE', 'DISMISSED');
CREATE TYPE insights_care_task_action AS ENUM ('CREATED', 'SNOOZED', 'REOPENED', 'COMPLETED', 'DISMISSED', 'ASSIGNED');

-- Thresholds an organization chose; without a row, the plugin configuration's defaults apply.
CREATE TABLE insights_settings (
  org_id uuid PRIMARY KEY REFERENCES organization(id),
  churn_days integer NOT NULL CHECK (churn_days BETWEEN 7 AND 730),
  lost_days integer NOT NULL CHECK (lost_days BETWEEN 8 AND 3650),
  segment_window_days integer NOT NULL CHECK (segment_window_days BETWEEN 30 AND 1095),
  high_frequency_visits integer NOT NULL CHECK (high_frequency_visits BETWEEN 1 AND 1000),
  high_ticket_minor bigint NOT NULL CHECK (high_ticket_minor BETWEEN 1 AND 100000000000),
  top_customer_percent integer NOT NULL CHECK (top_customer_percent BETWEEN 1 AND 99),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_by text NOT NULL,
  CHECK (lost_days > churn_days)
);

CREATE TABLE insights_segment (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  name text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
  description text CHECK (length(description) <= 1000),
  -- The rule tree as the application validated it; compiled to a parameterized WHERE clause when used.
  rules jsonb NOT NULL CHECK (jsonb_typeof(rules) = 'object'),
  created_by text NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  archived_at timestamptz(3)
);
CREATE UNIQUE INDEX insights_segment_org_id_name_idx ON insights_segment (org_id, lower(name)) WHERE archived_at IS NULL;

CREATE TABLE insights_care_task (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  kind insights_care_task_kind NOT NULL,
  -- (kind, customer, period): e.g. win-back:<customer>:<last visit>, birthday:<customer>:<local year-month>,
  -- feedback:<visit>. Unique, so every generator may run any number of times.
  dedupe_key text NOT NULL,
  customer_id uuid NOT NULL REFERENCES customer(id),
  store_id uuid REFERENCES store(id),
  assignee_id uuid REFERENCES staff(id),
  visit_id uuid REFERENCES visit(id),
  service_id uuid REFERENCES service(id),
  title text NOT NULL CHECK (length(btrim(title)) > 0),
  due_at timestamptz(3) NOT NULL,
  status insights_care_task_status NOT NULL DEFAULT 'OPEN',
  snoozed_until timestamptz(3),
  resolution text,
  resolved_at timestamptz(3),
  resolved_by text,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  UNIQUE (org_id, dedupe_key),
  CHECK ((status = 'SNOOZED') = (snoozed_until IS NOT NULL)),
  CHECK ((status IN ('DONE', 'DISMISSED')) = (resolved_at IS NOT NULL)),
  CHECK (resolved_at IS NULL OR (resolved_by IS NOT NULL AND length(btrim(resolution)) > 0)),
  CHECK (kind NOT IN ('FEEDBACK', 'FOLLOW_UP') OR visit_id IS NOT NULL),
  CHECK (kind <> 'REPURCHASE' OR (visit_id IS NOT NULL AND service_id IS NOT NULL))
);
CREATE INDEX insights_care_task_org_id_store_id_status_due_at_idx ON insights_care_task (org_id, store_id, status, due_at);
CREATE INDEX insights_care_task_assignee_id_status_due_at_idx ON insights_care_task (assignee_id, status, due_at);
CREATE INDEX insights_care_task_customer_id_kind_status_idx ON insights_care_task (customer_id, kind, status);
CREATE INDEX insights_care_task_visit_id_idx ON insights_care_task (visit_id);
CREATE INDEX insights_care_task_snoozed_until_idx ON insights_care_task (snoozed_until) WHERE status = 'SNOOZED';

-- What happened to a task, by whom and why. History: the application may only add to it.
CREATE TABLE insights_care_task_log (
  id bigserial PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES organization(id),
  task_id uuid NOT NULL REFERENCES insights_care_task(id),
  action insights_care_task_action NOT NULL,
  reason text,
  snoozed_until timestamptz(3),
  assignee_id uuid REFERENCES staff(id),
  actor text NOT NULL,
  at timestamptz(3) NOT NULL DEFAULT now(),
  CHECK (action NOT IN ('SNOOZED', 'COMPLETED', 'DISMISSED') OR length(btrim(reason)) > 0),
  CHECK ((action = 'SNOOZED') = (snoozed_until IS NOT NULL))
);
CREATE INDEX insights_care_task_log_task_id_id_idx ON insights_care_task_log (task_id, id);

-- Metrics scan an organization's completed visits by completion time, reading only these columns (index-only).
CREATE INDEX insights_visit_org_id_completed_at_idx ON visit (org_id, completed_at)
  INCLUDE (store_id, customer_id, total_minor) WHERE status = 'COMPLETED';
-- Per-customer order (metrics read the organization's visits customer by customer) and per-customer windows
-- (segment rules, value segments).
CREATE INDEX insights_visit_org_id_customer_id_completed_at_idx ON visit (org_id, customer_id, completed_at)
  INCLUDE (store_id, total_minor) WHERE status = 'COMPLETED';
CREATE INDEX insights_visit_line_service_id_idx ON visit_line (service_id) WHERE service_id IS NOT NULL;

-- The value segment of a customer from their completed visits in the trailing window (count, spend, last one),
-- at the instant `at`: no visit in the window → NULL; no visit in churn_days → AT_RISK; otherwise frequency
-- (visits ≥ high_frequency) × average ticket (spend ÷ visits ≥ high_ticket, compared exactly as spend ≥
-- high_ticket × visits): CORE_VALUE (both high), POTENTIAL (high ticket, low frequency), BASIC_MAINTENANCE
-- (high frequency, low ticket), AT_RISK (both low).
CREATE FUNCTION insights_value_segment(visits bigint, spend bigint, last_visit timestamptz, at timestamptz,
  churn_days integer, high_frequency integer, high_ticket bigint) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN coalesce(visits, 0) = 0 THEN NULL
    WHEN last_visit <= at - make_interval(days => churn_days) THEN 'AT_RISK'
    WHEN visits >= high_frequency AND spend >= high_ticket * visits THEN 'CORE_VALUE'
    WHEN spend >= high_ticket * visits THEN 'POTENTIAL'
    WHEN visits >= high_frequency THEN 'BASIC_MAINTENANCE'
    ELSE 'AT_RISK'
  END $$;

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['insights_settings', 'insights_segment', 'insights_care_task', 'insights_care_task_log']
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I TO crm_app USING (org_id = app_current_org())'
      ' WITH CHECK (org_id = app_current_org())', t);
  END LOOP;
END $$;

GRANT SELECT, INSERT ON insights_settings TO crm_app;
GRANT UPDATE (churn_days, lost_days, segment_window_days, high_frequency_visits, high_ticket_minor, top_customer_percent,
  updated_at, updated_by) ON insights_settings TO crm_app;
GRANT SELECT, INSERT ON insights_segment TO crm_app;
GRANT UPDATE (name, description, rules, updated_at, archived_at) ON insights_segment TO crm_app;
GRANT SELECT, INSERT ON insights_care_task TO crm_app;
GRANT UPDATE (status, snoozed_until, resolution, resolved_at, resolved_by, assignee_id, updated_at) ON insights_care_task TO crm_app;
-- The task log is history: never rewritten.
GRANT SELECT, INSERT ON insights_care_task_log TO crm_app;
GRANT USAGE ON SEQUENCE insights_care_task_log_id_seq TO crm_app;
GRANT EXECUTE ON FUNCTION insights_value_segment(bigint, bigint, timestamptz, timestamptz, integer, integer, bigint) TO crm_app;
