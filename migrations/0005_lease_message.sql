-- The queue message whose delivery holds a run's lease. Queues redelivers a
-- message only once the invocation that had it has ended (acked, retried,
-- failed or cut off), so a later delivery of the same message may take the
-- lease over at once instead of waiting for it to expire: an invocation cut
-- off by the platform before its closing write holds the run for seconds,
-- not for the lease's five minutes.
ALTER TABLE scrape_runs ADD COLUMN lease_message TEXT;
