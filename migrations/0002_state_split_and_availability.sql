-- Issue metadata split the way the repo hash is: `state_hash` covers every
-- stored field and decides whether the row is rewritten; `content_hash`
-- covers only what the analysis reads (title and the body's last edit) and
-- decides whether the issue is queued. The scraper fetches no bodies.
ALTER TABLE issues ADD COLUMN state_hash TEXT;
ALTER TABLE issues ADD COLUMN gh_last_edited_at TEXT;

-- Availability to a beginner, recomputed on every refresh:
-- reason 'ok' | 'assigned' | 'linked_pr' | 'archived_repo' | 'inactive_repo'.
ALTER TABLE issues ADD COLUMN linked_pr_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE issues ADD COLUMN available INTEGER NOT NULL DEFAULT 1;
ALTER TABLE issues ADD COLUMN availability TEXT NOT NULL DEFAULT 'ok'
    CHECK (availability IN ('ok', 'assigned', 'linked_pr', 'archived_repo', 'inactive_repo'));
CREATE INDEX issues_available_idx ON issues(available, state, repo_id);

-- A repo whose GraphQL alias keeps failing (FORBIDDEN, timeouts) is retried
-- a bounded number of times across invocations, then recorded as failed for
-- the run with GitHub's reason; its stored issues are left as they are.
ALTER TABLE repos ADD COLUMN scrape_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE repos ADD COLUMN scrape_error TEXT;
ALTER TABLE repos ADD COLUMN scrape_error_at INTEGER;

-- Run health: when the cursor last moved (a stuck run is detected by lack of
-- progress) and the attempt count of the transient failure it is waiting on.
ALTER TABLE scrape_runs ADD COLUMN last_progress_at INTEGER;
ALTER TABLE scrape_runs ADD COLUMN failure_attempts INTEGER NOT NULL DEFAULT 0;

-- Only one scrape chain per run advances: an invocation leases the run for
-- the cursor sequence it carries, and every progress write is guarded on
-- the lease (a concurrent duplicate delivery finds it taken).
ALTER TABLE scrape_runs ADD COLUMN lease_id TEXT;
ALTER TABLE scrape_runs ADD COLUMN lease_until INTEGER;

-- When an item was last handed to the processing queue: the reconciliation
-- pass of every run re-queues items still pending long after (messages can
-- be lost: Queues keep them 24 hours on the Free plan).
ALTER TABLE repos ADD COLUMN queued_at INTEGER;
ALTER TABLE issues ADD COLUMN queued_at INTEGER;
