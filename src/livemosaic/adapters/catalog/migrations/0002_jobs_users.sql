-- livemosaic catalog schema, version 2: geoprocessing jobs, job worker heartbeats, users.
-- Jobs live in the catalog database so they survive a restart and every server process
-- sees the same queue. Inputs, results and messages are stored as JSON text.

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    status TEXT NOT NULL,
    owner TEXT NOT NULL,
    service_key TEXT NOT NULL DEFAULT '',
    inputs TEXT NOT NULL,
    results TEXT NOT NULL,
    messages TEXT NOT NULL,
    worker TEXT,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    started INTEGER,
    finished INTEGER
);

-- The queue: the oldest submitted job of a task.
CREATE INDEX jobs_queue ON jobs (task, status, created);
-- "Is a job of this service running?" and "which jobs run on which worker?".
CREATE INDEX jobs_running ON jobs (status, service_key, worker);
-- Retention: finished jobs older than a cut-off.
CREATE INDEX jobs_finished ON jobs (finished) WHERE finished IS NOT NULL;
-- A user's own jobs.
CREATE INDEX jobs_owner ON jobs (owner, created);

-- The last sign of life of each job runner (one per server process).
CREATE TABLE job_workers (
    worker TEXT PRIMARY KEY,
    heartbeat INTEGER NOT NULL
);

-- Users: names are case-sensitive (ArcGIS), so the key keeps the default BINARY collation.
CREATE TABLE users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('user', 'publisher', 'administrator')),
    password_hash TEXT NOT NULL,
    token_epoch INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL
);
CREATE INDEX users_role ON users (role);
