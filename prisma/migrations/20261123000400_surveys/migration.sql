-- Surveys and complaints plugin. One invitation per completed visit and one response per invitation are database
-- facts (unique constraints), so a redelivered event or a raced submission cannot make a second. Responses and the
-- complaint timeline are append-only for the application role. SLA due times are computed here, in business hours
-- of the store's own time zone (complaint_business_due).

CREATE TYPE survey_purpose AS ENUM ('POST_VISIT', 'PERIODIC');
CREATE TYPE survey_channel AS ENUM ('CUSTOMER_APP', 'INVITATION_LINK');
CREATE TYPE complaint_category AS ENUM ('SERVICE_QUALITY', 'STAFF_ATTITUDE', 'HYGIENE', 'PRICE', 'ADVERSE_REACTION', 'BOOKING', 'OTHER');
CREATE TYPE complaint_severity AS ENUM ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL');
CREATE TYPE complaint_status AS ENUM ('OPEN', 'ACKNOWLEDGED', 'IN_PROGRESS', 'RESOLVED', 'CLOSED');
CREATE TYPE complaint_source AS ENUM ('CUSTOMER', 'STAFF', 'SURVEY');
CREATE TYPE complaint_entry_kind AS ENUM ('OPENED', 'STATUS_CHANGED', 'REOPENED', 'ASSIGNED', 'COMMENTED', 'SLA_BREACHED');

CREATE TABLE survey_template (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  key text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_-]{0,59}$'),
  name text NOT NULL CHECK (length(btrim(name)) > 0),
  purpose survey_purpose NOT NULL,
  active boolean NOT NULL DEFAULT false,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  created_by text NOT NULL,
  UNIQUE (org_id, key)
);
-- At most one active template per purpose: the one new invitations use.
CREATE UNIQUE INDEX survey_template_one_active_idx ON survey_template (org_id, purpose) WHERE active;

CREATE TABLE survey_template_version (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  template_id uuid NOT NULL REFERENCES survey_template(id),
  version integer NOT NULL CHECK (version > 0),
  questions jsonb NOT NULL CHECK (jsonb_typeof(questions) = 'array' AND jsonb_array_length(questions) > 0),
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  created_by text NOT NULL,
  UNIQUE (template_id, version)
);

CREATE TABLE survey_invitation (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  customer_id uuid NOT NULL REFERENCES customer(id),
  store_id uuid NOT NULL REFERENCES store(id),
  -- One invitation per completed visit, however often visit.completed is delivered.
  visit_id uuid UNIQUE REFERENCES visit(id),
  kind survey_purpose NOT NULL,
  period_key text,
  template_version_id uuid NOT NULL REFERENCES survey_template_version(id),
  available_at timestamptz(3) NOT NULL,
  expires_at timestamptz(3) NOT NULL,
  -- SHA-256 (hex) of the one-time link token; the token itself is never stored.
  token_hash text UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  link_issued_at timestamptz(3),
  responded_at timestamptz(3),
  withdrawn_at timestamptz(3),
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  -- One periodic invitation per customer and period (NULL period keys, i.e. post-visit ones, never collide).
  UNIQUE (org_id, customer_id, period_key),
  CHECK (expires_at > available_at),
  CHECK ((kind = 'POST_VISIT') = (visit_id IS NOT NULL)),
  CHECK ((kind = 'PERIODIC') = (period_key IS NOT NULL)),
  CHECK ((token_hash IS NULL) = (link_issued_at IS NULL)),
  CHECK (responded_at IS NULL OR withdrawn_at IS NULL)
);
CREATE INDEX survey_invitation_customer_id_created_at_idx ON survey_invitation (customer_id, created_at);
CREATE INDEX survey_invitation_store_id_created_at_idx ON survey_invitation (store_id, created_at);

CREATE TABLE survey_response (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  -- One response per invitation.
  invitation_id uuid NOT NULL UNIQUE REFERENCES survey_invitation(id),
  customer_id uuid NOT NULL REFERENCES customer(id),
  store_id uuid NOT NULL REFERENCES store(id),
  visit_id uuid REFERENCES visit(id),
  template_version_id uuid NOT NULL REFERENCES survey_template_version(id),
  channel survey_channel NOT NULL,
  nps_score smallint CHECK (nps_score BETWEEN 0 AND 10),
  csat_score smallint CHECK (csat_score BETWEEN 1 AND 5),
  answers jsonb NOT NULL CHECK (jsonb_typeof(answers) = 'array'),
  submitted_at timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX survey_response_org_id_submitted_at_idx ON survey_response (org_id, submitted_at);
CREATE INDEX survey_response_store_id_submitted_at_idx ON survey_response (store_id, submitted_at);
CREATE INDEX survey_response_customer_id_submitted_at_idx ON survey_response (customer_id, submitted_at);

CREATE TABLE complaint (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id uuid NOT NULL REFERENCES organization(id),
  number integer NOT NULL CHECK (number > 0),
  customer_id uuid REFERENCES customer(id),
  store_id uuid NOT NULL REFERENCES store(id),
  visit_id uuid REFERENCES visit(id),
  staff_id uuid REFERENCES staff(id),
  category complaint_category NOT NULL,
  severity complaint_severity NOT NULL,
  status complaint_status NOT NULL DEFAULT 'OPEN',
  source complaint_source NOT NULL,
  subject text NOT NULL CHECK (length(btrim(subject)) > 0),
  description text,
  -- A low-score response opens at most one case.
  survey_response_id uuid UNIQUE REFERENCES survey_response(id),
  assignee_id uuid REFERENCES staff(id),
  opened_at timestamptz(3) NOT NULL DEFAULT now(),
  first_response_due_at timestamptz(3) NOT NULL,
  resolution_due_at timestamptz(3) NOT NULL,
  first_responded_at timestamptz(3),
  resolved_at timestamptz(3),
  closed_at timestamptz(3),
  first_response_breached_at timestamptz(3),
  resolution_breached_at timestamptz(3),
  reopen_count integer NOT NULL DEFAULT 0 CHECK (reopen_count >= 0),
  created_by text NOT NULL,
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  UNIQUE (org_id, number),
  CHECK (first_response_due_at >= opened_at AND resolution_due_at >= first_response_due_at),
  CHECK ((source = 'SURVEY') = (survey_response_id IS NOT NULL)),
  -- The status and its timestamps agree.
  CHECK (status = 'OPEN' OR first_responded_at IS NOT NULL),
  CHECK ((status IN ('RESOLVED', 'CLOSED')) = (resolved_at IS NOT NULL)),
  CHECK ((status = 'CLOSED') = (closed_at IS NOT NULL))
);
CREATE INDEX complaint_org_id_opened_at_idx ON complaint (org_id, opened_at);
CREATE INDEX complaint_store_id_opened_at_idx ON complaint (store_id, opened_at);
CREATE INDEX complaint_customer_id_opened_at_idx ON complaint (customer_id, opened_at);
-- What the SLA job scans: cases with a due time still to watch.
CREATE INDEX complaint_first_response_watch_idx ON complaint (first_response_due_at)
  WHERE first_responded_at IS NULL AND first_response_breached_at IS NULL;
CREATE INDEX complaint_resolution_watch_idx ON complaint (resolution_due_at)
  WHERE resolved_at IS NULL AND resolution_breached_at IS NULL;

CREATE TABLE complaint_entry (
  id bigserial PRIMARY KEY,
  org_id uuid NOT NULL REFERENCES organization(id),
  complaint_id uuid NOT NULL REFERENCES complaint(id),
  kind complaint_entry_kind NOT NULL,
  from_status complaint_status,
  to_status complaint_status,
  assignee_id uuid REFERENCES staff(id),
  note text,
  -- Internal notes are for staff; the customer sees the rest of the timeline.
  internal boolean NOT NULL DEFAULT false,
  actor text NOT NULL,
  data jsonb NOT NULL DEFAULT '{}',
  occurred_at timestamptz(3) NOT NULL DEFAULT now(),
  CHECK (kind NOT IN ('STATUS_CHANGED', 'REOPENED') OR (from_status IS NOT NULL AND to_status IS NOT NULL)),
  CHECK (kind <> 'COMMENTED' OR length(btrim(note)) > 0)
);
CREATE INDEX complaint_entry_complaint_id_occurred_at_id_idx ON complaint_entry (complaint_id, occurred_at, id);

-- Business time. A store's business hours are the same minutes of the day [opens_minute, closes_minute) on the
-- ISO weekdays in open_days (1 = Monday … 7 = Sunday), read on the store's local clock (tz). Adding N business
-- minutes to an instant walks forward through those windows only: time outside them (nights, closed days) does
-- not count. Public holidays are not modelled.
CREATE FUNCTION complaint_business_due(start_at timestamptz, business_minutes integer, tz text,
  opens_minute integer, closes_minute integer, open_days integer[]) RETURNS timestamptz
  LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, public AS $$
DECLARE
  local_at timestamp := start_at AT TIME ZONE tz;
  on_day date := (start_at AT TIME ZONE tz)::date;
  remaining interval := make_interval(mins => business_minutes);
  opens_at timestamp;
  closes_at timestamp;
  from_at timestamp;
BEGIN
  IF business_minutes IS NULL OR business_minutes < 0 OR opens_minute < 0 OR closes_minute > 1440
     OR opens_minute >= closes_minute OR coalesce(cardinality(open_days), 0) = 0
     OR NOT open_days <@ ARRAY[1, 2, 3, 4, 5, 6, 7] THEN
    RAISE EXCEPTION 'complaint_business_due: invalid business hours' USING ERRCODE = '22023';
  END IF;
  IF business_minutes = 0 THEN
    RETURN start_at;
  END IF;
  -- At most 8 years of days: ample for any SLA and a guard against a loop without end.
  FOR step IN 1..3000 LOOP
    IF extract(isodow FROM on_day)::integer = ANY (open_days) THEN
      opens_at := on_day + make_interval(mins => opens_minute);
      closes_at := on_day + make_interval(mins => closes_minute);
      from_at := greatest(local_at, opens_at);
      IF from_at < closes_at THEN
        IF from_at + remaining <= closes_at THEN
          RETURN (from_at + remaining) AT TIME ZONE tz;
        END IF;
        remaining := remaining - (closes_at - from_at);
      END IF;
    END IF;
    on_day := on_day + 1;
    local_at := on_day::timestamp;
  END LOOP;
  RAISE EXCEPTION 'complaint_business_due: due time out of range' USING ERRCODE = '22023';
END $$;

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['survey_template', 'survey_template_version', 'survey_invitation', 'survey_response',
    'complaint', 'complaint_entry']
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I TO crm_app USING (org_id = app_current_org())'
      ' WITH CHECK (org_id = app_current_org())', t);
  END LOOP;
END $$;

GRANT SELECT, INSERT ON survey_template TO crm_app;
GRANT UPDATE (name, active) ON survey_template TO crm_app;
-- Versions, responses and the complaint timeline are history: never rewritten.
GRANT SELECT, INSERT ON survey_template_version, survey_response, complaint_entry TO crm_app;
GRANT SELECT, INSERT ON survey_invitation TO crm_app;
GRANT UPDATE (token_hash, link_issued_at, responded_at, withdrawn_at) ON survey_invitation TO crm_app;
GRANT SELECT, INSERT ON complaint TO crm_app;
GRANT UPDATE (status, assignee_id, first_responded_at, resolved_at, closed_at, first_response_breached_at,
  resolution_breached_at, reopen_count, updated_at) ON complaint TO crm_app;
GRANT USAGE ON SEQUENCE complaint_entry_id_seq TO crm_app;
GRANT EXECUTE ON FUNCTION complaint_business_due(timestamptz, integer, text, integer, integer, integer[]) TO crm_app;
