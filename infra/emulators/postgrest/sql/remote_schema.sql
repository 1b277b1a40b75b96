-- The remote Gestão Scouter project, as far as syncq touches it: public.leads with its
-- column names (English-ish, not TabuladorMax's), RLS with a service_role policy, the
-- schema-cache reload RPC, and the optional reverse-sync trigger.
-- Applied by the emulator when public.leads is missing (roles are created beforehand).
-- Idempotent: it may be applied again over an existing database.

CREATE TABLE IF NOT EXISTS public.leads (
    id              bigint PRIMARY KEY,
    name            text NOT NULL,
    age             integer CHECK (age IS NULL OR age BETWEEN 0 AND 130),
    address         text,
    phone           text,
    telephone       text,
    email           text,
    responsible     text,
    scouter         text,
    project         text,
    stage           text,
    status          text,
    source          text,
    photo_url       text,
    date_of_birth   date,
    gender          text,
    latitude        double precision,
    longitude       double precision,
    ficha_value     numeric(12, 2),
    ficha_confirmed boolean NOT NULL DEFAULT false,
    external_id     text,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    criado          timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    sync_source     text DEFAULT 'gestao_scouter',
    last_synced_at  timestamptz,
    CONSTRAINT leads_external_id_key UNIQUE (external_id)
);

CREATE INDEX IF NOT EXISTS leads_updated_at_idx ON public.leads (updated_at);
CREATE INDEX IF NOT EXISTS leads_criado_idx ON public.leads (criado);

COMMENT ON TABLE public.leads IS 'Leads received from TabuladorMax (and edited here).';

-- Supabase grants table privileges to its API roles and lets RLS decide.
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.leads TO anon, authenticated, service_role;

ALTER TABLE public.leads ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS service_role_full_access_leads ON public.leads;
CREATE POLICY service_role_full_access_leads
    ON public.leads
    FOR ALL
    TO service_role
    USING (true)
    WITH CHECK (true);

-- The usual way to reload PostgREST's schema cache from outside: an RPC issuing the NOTIFY.
CREATE OR REPLACE FUNCTION public.reload_schema_cache()
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    NOTIFY pgrst, 'reload schema';
END;
$$;
REVOKE ALL ON FUNCTION public.reload_schema_cache() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.reload_schema_cache() TO service_role;

-- Reverse sync (optional in the real project). The real trigger calls net.http_post, which
-- queues the request for pg_net's background worker; here the trigger queues the webhook
-- body in an outbox and NOTIFYs gs_webhook, and the emulator's delivery thread POSTs it.
CREATE SCHEMA IF NOT EXISTS emulator;

CREATE TABLE IF NOT EXISTS emulator.webhook_outbox (
    id         bigserial PRIMARY KEY,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The trigger's loop guard (the seed's `IF NEW.sync_source = 'tabuladormax' ...`) lives in
-- the trigger's WHEN clause, so rows written by TabuladorMax cost no function call. It can
-- be switched off (a remote configured without it, see queries.sql: loop_guard_off) to
-- test the receiving side's own loop detection; this table remembers the setting.
CREATE TABLE IF NOT EXISTS emulator.webhook_settings (
    id         integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    loop_guard boolean NOT NULL DEFAULT true
);
INSERT INTO emulator.webhook_settings (id) VALUES (1) ON CONFLICT (id) DO NOTHING;

CREATE OR REPLACE FUNCTION emulator.notify_tabuladormax()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, emulator
AS $$
BEGIN
    INSERT INTO emulator.webhook_outbox (payload)
    VALUES (jsonb_build_object('lead', row_to_json(NEW), 'source', 'gestao_scouter'));
    PERFORM pg_notify('gs_webhook', '');
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS sync_to_tabuladormax ON public.leads;
-- Avoid the infinite loop: rows written by TabuladorMax are not sent back.
CREATE TRIGGER sync_to_tabuladormax
    AFTER INSERT OR UPDATE ON public.leads
    FOR EACH ROW
    WHEN (NEW.sync_source IS DISTINCT FROM 'tabuladormax'
          AND NEW.sync_source IS DISTINCT FROM 'supabase')
    EXECUTE FUNCTION emulator.notify_tabuladormax();
