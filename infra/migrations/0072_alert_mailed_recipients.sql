-- The recipients an alert's e-mail reached. A mail server may take some recipients of a
-- message and refuse others (a mailbox greylisted, 450, or full): the alert ended `sent`
-- and the refused recipients never heard of it. Now the e-mail channel is delivered once
-- every recipient took it; a retry mails only those not in this list, so the recipients
-- that took it are not mailed twice.
ALTER TABLE alert_outbox ADD COLUMN IF NOT EXISTS mailed text[] NOT NULL DEFAULT '{}';
