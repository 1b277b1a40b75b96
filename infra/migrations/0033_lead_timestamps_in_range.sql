-- A lead's timestamps must be ones the export can carry. Its keyset cursor starts before
-- year 1 and is read back into Python (years 1-9999, in any session time zone), so a
-- lead dated -infinity, BC or past 9999 would be counted by an export and never sent.
-- A day of margin at each end covers every time-zone offset. The reverse webhook already
-- turns a refused value into a 422 naming the constraint.
-- On a database that already holds such a lead this migration fails, naming the
-- constraint: correct the lead's date, then migrate again.
ALTER TABLE leads
  ADD CONSTRAINT leads_criado_in_range
    CHECK (criado >= '0001-01-02 00:00:00+00' AND criado < '9999-12-31 00:00:00+00'),
  ADD CONSTRAINT leads_updated_at_in_range
    CHECK (updated_at >= '0001-01-02 00:00:00+00' AND updated_at < '9999-12-31 00:00:00+00');
