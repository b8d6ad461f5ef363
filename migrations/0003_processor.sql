-- What the processor analysed. `body_hash` is hash::analysed_text_hash of the
-- title and the body the processor fetched for the stored analysis. An issue
-- re-queued for new content (a new title or `lastEditedAt`) whose fetched text
-- hashes to it keeps its analysis: no AI call, the row is completed for the
-- new content hash.
ALTER TABLE issues ADD COLUMN body_hash TEXT;
