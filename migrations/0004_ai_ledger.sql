-- Workers AI's daily neuron ledger, one row per UTC day ('YYYY-MM-DD'; the
-- free allocation resets at 00:00 UTC). The processor adds every call's
-- neurons (from the token usage it reports) when it commits the batch, with
-- the cap and model it ran with; the scraper sizes AI upgrades and
-- /admin/status reports the budget from it.
CREATE TABLE ai_ledger (
    day TEXT PRIMARY KEY,
    neurons REAL NOT NULL DEFAULT 0,
    calls INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    -- calls not started because the cap was reached (heuristic now, upgrade later)
    refused INTEGER NOT NULL DEFAULT 0,
    cap REAL NOT NULL,
    model TEXT,
    -- when Workers AI itself answered that the allocation is spent
    exhausted_at INTEGER,
    updated_at INTEGER NOT NULL
);

-- Neurons a processor invocation holds against the day's cap until it
-- commits: granted atomically, so concurrent invocations never start calls
-- past the cap together. A row older than the TTL belongs to an invocation
-- that died and no longer counts.
CREATE TABLE ai_reservations (
    invocation TEXT PRIMARY KEY,
    day TEXT NOT NULL,
    neurons REAL NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX ai_reservations_day_idx ON ai_reservations(day, created_at);

-- The upgrade backlog is read by stored model and status.
CREATE INDEX issues_analysis_model_idx ON issues(analysis_model, processing_status);
