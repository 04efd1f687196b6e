-- The event types some plugin handles. A process adds its plugins' types when it starts, and the outbox trigger
-- enqueues a job only for those: a completed visit's points.earned and careTask.* events were two jobs of its three,
-- and no handler ran for either. A type stays once added, so an event whose plugin was switched off still gets a job,
-- which then does nothing, as before.
CREATE TABLE event_handler_type (
  type text PRIMARY KEY,
  registered_at timestamptz(3) NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION enqueue_domain_event() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, public AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM event_handler_type WHERE type = NEW.type) THEN
    RETURN NULL;
  END IF;
  PERFORM graphile_worker.add_job(
    'domain-event',
    json_build_object('id', NEW.id),
    queue_name => CASE WHEN NEW.stream_key IS NULL THEN NULL ELSE 'stream:' || NEW.stream_key END,
    max_attempts => 25
  );
  RETURN NULL;
END $$;
