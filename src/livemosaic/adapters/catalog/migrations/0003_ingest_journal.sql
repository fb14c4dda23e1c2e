-- livemosaic catalog schema, version 3: the ingest journal.
-- One row per (dataset, file): which version of the file (size, mtime) was seen and what
-- became of it. Rows in state 'added' are written in the same transaction as the file's
-- items, so after a crash a file is either fully added and journaled or neither; 'pending'
-- rows are files taken but not finished (re-processed on restart); 'quarantined' rows are
-- files that failed, with the reason.

CREATE TABLE ingest_journal (
    dataset_id INTEGER NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'added', 'quarantined')),
    reason TEXT NOT NULL DEFAULT '',
    item_count INTEGER NOT NULL DEFAULT 0,
    moved_to TEXT,
    first_seen INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, path)
);

-- "Which files are quarantined / pending?" per dataset or overall.
CREATE INDEX ingest_journal_state ON ingest_journal (state, dataset_id, path);
