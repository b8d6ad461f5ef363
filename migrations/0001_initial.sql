-- contribot schema. Timestamps are Unix milliseconds (INTEGER); GitHub's own
-- timestamps are kept verbatim as ISO-8601 TEXT. JSON columns hold arrays.

-- Where repos come from: the awesome-for-beginners list, or 'manual'
-- (operator bulk enqueue). The last good list content is remembered so a
-- broken list never wipes the repo set.
CREATE TABLE data_sources (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('awesome_list', 'manual')),
    url TEXT,
    last_good_hash TEXT,
    last_good_at INTEGER,
    last_error TEXT,
    last_error_at INTEGER
);

CREATE TABLE repos (
    id INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    data_source TEXT NOT NULL REFERENCES data_sources(id),
    list_position INTEGER,
    listed_labels TEXT NOT NULL DEFAULT '[]',
    technologies TEXT NOT NULL DEFAULT '[]',
    list_description TEXT,
    list_hash TEXT,
    -- 1 while the repo is listed (or was added by an operator); 0 once it
    -- leaves the list. Inactive repos are not scraped.
    active INTEGER NOT NULL DEFAULT 1,
    -- label resolution, remembered: 'unresolved' | 'resolved' | 'not_found'
    label_status TEXT NOT NULL DEFAULT 'unresolved'
        CHECK (label_status IN ('unresolved', 'resolved', 'not_found')),
    resolved_label TEXT,
    label_checked_at INTEGER,
    -- upstream state: 'unknown' | 'ok' | 'not_found'
    upstream_status TEXT NOT NULL DEFAULT 'unknown'
        CHECK (upstream_status IN ('unknown', 'ok', 'not_found')),
    name_with_owner TEXT,
    description TEXT,
    primary_language TEXT,
    stars INTEGER,
    is_archived INTEGER NOT NULL DEFAULT 0,
    pushed_at TEXT,
    -- every stored upstream field; the row is rewritten only when it changes
    state_hash TEXT,
    -- what the summary depends on; the repo is queued only when it changes
    content_hash TEXT,
    -- outbox: the content hash last handed to the processing queue
    queued_hash TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    -- processor output
    languages TEXT,
    languages_raw TEXT,
    topics TEXT,
    summary TEXT,
    analysis_model TEXT,
    prompt_version TEXT,
    analysis_hash TEXT,
    analyzed_at INTEGER,
    fallback_reason TEXT,
    processing_status TEXT NOT NULL DEFAULT 'pending'
        CHECK (processing_status IN ('pending', 'processing', 'completed', 'failed')),
    processed_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (owner, name)
);
CREATE INDEX repos_processing_status_idx ON repos(processing_status);
CREATE INDEX repos_updated_at_idx ON repos(updated_at);
CREATE INDEX repos_source_position_idx ON repos(data_source, list_position);

CREATE TABLE issues (
    id INTEGER PRIMARY KEY,
    repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    title TEXT NOT NULL,
    body TEXT,
    url TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    labels TEXT NOT NULL DEFAULT '[]',
    assignee_count INTEGER NOT NULL DEFAULT 0,
    comment_count INTEGER NOT NULL DEFAULT 0,
    gh_created_at TEXT,
    gh_updated_at TEXT,
    content_hash TEXT NOT NULL,
    queued_hash TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    -- processor output
    intro TEXT,
    difficulty INTEGER CHECK (difficulty IS NULL OR difficulty BETWEEN 1 AND 5),
    first_steps TEXT,
    skills TEXT,
    analysis_model TEXT,
    prompt_version TEXT,
    analysis_hash TEXT,
    analyzed_at INTEGER,
    fallback_reason TEXT,
    processing_status TEXT NOT NULL DEFAULT 'pending'
        CHECK (processing_status IN ('pending', 'processing', 'completed', 'failed')),
    processed_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (repo_id, number)
);
CREATE INDEX issues_processing_status_idx ON issues(processing_status);
CREATE INDEX issues_updated_at_idx ON issues(updated_at);
CREATE INDEX issues_repo_state_idx ON issues(repo_id, state);

-- One row per scrape run (cron or operator), spanning its continuations.
CREATE TABLE scrape_runs (
    id TEXT PRIMARY KEY,
    trigger TEXT NOT NULL,
    data_source TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    status TEXT NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'completed', 'failed')),
    invocations INTEGER NOT NULL DEFAULT 0,
    continuations INTEGER NOT NULL DEFAULT 0,
    repos_seen INTEGER NOT NULL DEFAULT 0,
    repos_changed INTEGER NOT NULL DEFAULT 0,
    repos_skipped INTEGER NOT NULL DEFAULT 0,
    issues_upserted INTEGER NOT NULL DEFAULT 0,
    issues_closed INTEGER NOT NULL DEFAULT 0,
    messages_queued INTEGER NOT NULL DEFAULT 0,
    subrequests_used INTEGER NOT NULL DEFAULT 0,
    max_subrequests INTEGER NOT NULL DEFAULT 0,
    github_requests INTEGER NOT NULL DEFAULT 0,
    graphql_points INTEGER NOT NULL DEFAULT 0,
    cursor TEXT,
    outcome TEXT,
    error TEXT
);
CREATE INDEX scrape_runs_started_idx ON scrape_runs(started_at);

-- One row per worker invocation of either service: the budget ledger.
CREATE TABLE invocations (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL CHECK (service IN ('scraper', 'processor')),
    run_id TEXT,
    started_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    subrequests INTEGER NOT NULL,
    budget INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    summary TEXT,
    log_key TEXT
);
CREATE INDEX invocations_service_idx ON invocations(service, started_at);

-- Deliveries seen per queue message id: workers-rs does not expose a
-- message's attempt count, so the consumers count attempts here.
CREATE TABLE deliveries (
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    last_error TEXT,
    first_seen_at INTEGER NOT NULL,
    PRIMARY KEY (queue, message_id)
);

-- Queue messages that could not be tied to a repo or issue row (malformed
-- bodies, unknown types): recorded, never silently dropped.
CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    received_at INTEGER NOT NULL,
    UNIQUE (queue, message_id)
);

INSERT INTO data_sources (id, kind, url) VALUES
    ('awesome-for-beginners', 'awesome_list', NULL),
    ('manual', 'manual', NULL);
