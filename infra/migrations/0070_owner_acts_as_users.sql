-- The user that runs syncq takes the role `authenticated` for every read made for a user
-- (SET LOCAL ROLE, shared/db.py), which needs membership with SET. A superuser has it;
-- on a managed server (Cloud SQL, RDS) the application's user is no superuser, only
-- CREATEROLE, and creating the role in 0001 made it no member: every such read was refused
-- (500). The migrating user (the one syncq runs as) is made a member here; one that may
-- not grant it fails the migration, saying what a superuser must run.
DO $$
DECLARE
  can_set boolean;
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RETURN;
  END IF;
  EXECUTE format('SELECT pg_has_role(current_user, ''authenticated'', %L)',
                 CASE WHEN current_setting('server_version_num')::integer >= 160000
                      THEN 'SET' ELSE 'MEMBER' END)
    INTO can_set;
  IF NOT can_set THEN
    EXECUTE format('GRANT authenticated TO %I', current_user)
      || CASE WHEN current_setting('server_version_num')::integer >= 160000
              THEN ' WITH SET TRUE' ELSE '' END;
  END IF;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE EXCEPTION 'the user % may not take the role authenticated, which syncq needs',
                  current_user
    USING HINT = format('As a superuser: GRANT authenticated TO %I; then migrate again.',
                        current_user);
END
$$;
