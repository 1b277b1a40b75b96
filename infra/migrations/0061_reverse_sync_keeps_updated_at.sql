-- The reverse sync writes a remote edit with the remote's updated_at, so "which side is
-- newer" stays comparable. When that value equals the local one (the remote's row holds
-- the updated_at our export wrote there, and a remote without an updated_at trigger keeps
-- it), the touch trigger took the write for one that did not set updated_at and put now()
-- there: the local row then looked newer than every later edit of the remote, and each
-- was dropped as stale. The reverse sync now says so (`syncq.updated_at_given`, set for
-- its transaction when the remote row carries updated_at) and the trigger keeps the value.
CREATE OR REPLACE FUNCTION leads_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at
     AND current_setting('syncq.updated_at_given', true) IS DISTINCT FROM 'on' THEN
    NEW.updated_at := now();
  END IF;
  RETURN NEW;
END
$$;
