-- When the platform received the event and when the SMTP server accepted the notice: the
-- end-to-end latency, from MLLP receipt to hand-off, for metrics and benchmarks.
ALTER TABLE notification ADD COLUMN received_at timestamptz;
ALTER TABLE notification ADD COLUMN sent_at timestamptz;
