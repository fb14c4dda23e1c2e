-- livemosaic catalog schema, version 1.
-- Items of every dataset share one table; each spatial lookup goes through the R*Tree
-- (with the dataset id as a third dimension), time lookups through (dataset_id, time).
-- The summary tables are kept current in the same transaction as every add and remove.

CREATE TABLE datasets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    crs TEXT NOT NULL DEFAULT '',
    time_pattern TEXT,
    history_enabled INTEGER NOT NULL DEFAULT 1,
    description TEXT NOT NULL DEFAULT '',
    created INTEGER NOT NULL
);

CREATE TABLE items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset_id INTEGER NOT NULL REFERENCES datasets (id),
    path TEXT NOT NULL,
    uri TEXT NOT NULL,
    name TEXT NOT NULL,
    bands TEXT NOT NULL,
    footprint TEXT NOT NULL,
    xmin REAL NOT NULL,
    ymin REAL NOT NULL,
    xmax REAL NOT NULL,
    ymax REAL NOT NULL,
    native_crs TEXT NOT NULL,
    native_extent TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    cell_size_x REAL NOT NULL,
    cell_size_y REAL NOT NULL,
    low_ps REAL NOT NULL,
    high_ps REAL NOT NULL,
    low_ps_y REAL NOT NULL,
    high_ps_y REAL NOT NULL,
    min_ps REAL NOT NULL,
    max_ps REAL NOT NULL,
    pixel_type TEXT NOT NULL,
    band_count INTEGER NOT NULL,
    band_names TEXT NOT NULL,
    nodata TEXT,
    mask_kind TEXT NOT NULL,
    stats TEXT NOT NULL,
    file_size INTEGER NOT NULL,
    file_mtime_ns INTEGER NOT NULL,
    time INTEGER,
    end_time INTEGER,
    time_end INTEGER,
    duration INTEGER,
    variable TEXT,
    std_z REAL,
    dimensions TEXT NOT NULL,
    dimension_names TEXT,
    attributes TEXT NOT NULL,
    value_scale REAL,
    value_offset REAL,
    overview_count INTEGER NOT NULL,
    category INTEGER,
    tag TEXT,
    group_name TEXT,
    product_name TEXT,
    center_x REAL,
    center_y REAL,
    zorder INTEGER,
    shape_length REAL,
    shape_area REAL,
    date_added INTEGER NOT NULL
);

CREATE INDEX items_dataset ON items (dataset_id);
CREATE INDEX items_path ON items (dataset_id, path);
CREATE INDEX items_time ON items (dataset_id, time);
CREATE INDEX items_time_end ON items (dataset_id, time_end);
CREATE INDEX items_duration ON items (dataset_id, duration);
CREATE INDEX items_variable ON items (dataset_id, variable COLLATE NOCASE, time);
CREATE INDEX items_std_z ON items (dataset_id, std_z);
CREATE INDEX items_xmin ON items (dataset_id, xmin);
CREATE INDEX items_ymin ON items (dataset_id, ymin);
CREATE INDEX items_xmax ON items (dataset_id, xmax);
CREATE INDEX items_ymax ON items (dataset_id, ymax);
CREATE INDEX items_low_ps ON items (dataset_id, low_ps);
CREATE INDEX items_low_ps_y ON items (dataset_id, low_ps_y);
CREATE INDEX items_high_ps ON items (dataset_id, high_ps);
CREATE INDEX items_high_ps_y ON items (dataset_id, high_ps_y);

-- Bounding boxes; ds_min = ds_max = dataset id, so one lookup never visits other datasets.
CREATE VIRTUAL TABLE items_rtree USING rtree (id, xmin, xmax, ymin, ymax, ds_min, ds_max);

-- Dimensions other than StdTime and StdZ (those have columns).
CREATE TABLE item_dims (
    item_id INTEGER NOT NULL,
    name TEXT NOT NULL COLLATE NOCASE,
    value REAL NOT NULL,
    PRIMARY KEY (item_id, name)
);
CREATE INDEX item_dims_value ON item_dims (name, value);

-- Per-band minimum and maximum of every item, so removals recompute bounds by index.
CREATE TABLE item_band_stats (
    item_id INTEGER NOT NULL,
    dataset_id INTEGER NOT NULL,
    variable TEXT NOT NULL,
    band INTEGER NOT NULL,
    min REAL,
    max REAL,
    PRIMARY KEY (item_id, band)
);
CREATE INDEX item_band_stats_band_min ON item_band_stats (dataset_id, band, min);
CREATE INDEX item_band_stats_band_max ON item_band_stats (dataset_id, band, max);
CREATE INDEX item_band_stats_var_min ON item_band_stats (dataset_id, variable, min);
CREATE INDEX item_band_stats_var_max ON item_band_stats (dataset_id, variable, max);

CREATE TABLE summary (
    dataset_id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 0,
    item_count INTEGER NOT NULL DEFAULT 0,
    xmin REAL,
    ymin REAL,
    xmax REAL,
    ymax REAL,
    min_cell_x REAL,
    min_cell_y REAL,
    max_cell_x REAL,
    max_cell_y REAL,
    time_min INTEGER,
    time_max INTEGER
);

-- Counts of distinct values (kind: pixel_type, band_count, band_names, nodata).
CREATE TABLE summary_counters (
    dataset_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, kind, key)
);

-- Pooled band statistics: running weight, sum and sum of squares; min/max by index.
CREATE TABLE summary_bands (
    dataset_id INTEGER NOT NULL,
    band INTEGER NOT NULL,
    item_count INTEGER NOT NULL,
    weight REAL NOT NULL,
    total REAL NOT NULL,
    total_sq REAL NOT NULL,
    min REAL,
    max REAL,
    PRIMARY KEY (dataset_id, band)
);

CREATE TABLE summary_variables (
    dataset_id INTEGER NOT NULL,
    variable TEXT NOT NULL,
    item_count INTEGER NOT NULL,
    unit TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    weight REAL NOT NULL DEFAULT 0,
    total REAL NOT NULL DEFAULT 0,
    total_sq REAL NOT NULL DEFAULT 0,
    min REAL,
    max REAL,
    PRIMARY KEY (dataset_id, variable)
);

CREATE TABLE summary_dimensions (
    dataset_id INTEGER NOT NULL,
    variable TEXT NOT NULL,
    dimension TEXT NOT NULL,
    item_count INTEGER NOT NULL,
    unit TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (dataset_id, variable, dimension)
);

CREATE TABLE summary_dimension_values (
    dataset_id INTEGER NOT NULL,
    variable TEXT NOT NULL,
    dimension TEXT NOT NULL,
    value REAL NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, variable, dimension, value)
);

CREATE TABLE history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset_id INTEGER NOT NULL,
    time INTEGER NOT NULL,
    operation TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX history_dataset ON history (dataset_id, id);

CREATE TABLE services (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    folder TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE,
    dataset TEXT NOT NULL COLLATE NOCASE,
    definition TEXT NOT NULL,
    UNIQUE (folder, name)
);
CREATE INDEX services_dataset ON services (dataset);

CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    published_at INTEGER NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (service_id, version)
);

-- Planner statistics describing a large catalog: a dataset holds many items, while time,
-- extent and path values are selective. Without them SQLite may prefer the dataset index
-- over the time index or the primary key. A real ANALYZE replaces them.
ANALYZE;
DELETE FROM sqlite_stat1 WHERE tbl = 'items';
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('items', NULL, '1000000'),
    ('items', 'items_dataset', '1000000 100000'),
    ('items', 'items_path', '1000000 100000 2'),
    ('items', 'items_time', '1000000 100000 4'),
    ('items', 'items_time_end', '1000000 100000 4'),
    ('items', 'items_duration', '1000000 100000 50000'),
    ('items', 'items_variable', '1000000 100000 20000 4'),
    ('items', 'items_std_z', '1000000 100000 5000'),
    ('items', 'items_xmin', '1000000 100000 10'),
    ('items', 'items_ymin', '1000000 100000 10'),
    ('items', 'items_xmax', '1000000 100000 10'),
    ('items', 'items_ymax', '1000000 100000 10'),
    ('items', 'items_low_ps', '1000000 100000 10000'),
    ('items', 'items_low_ps_y', '1000000 100000 10000'),
    ('items', 'items_high_ps', '1000000 100000 10000'),
    ('items', 'items_high_ps_y', '1000000 100000 10000');
