-- livemosaic PostgreSQL catalog schema, version 2: the time-field mapping of a mosaic dataset
-- (as SQLite schema 6). time_field names the metadata item that holds a file's acquisition
-- time ("[DOMAIN:]NAME"); time_format is the strftime format of its value (NULL: ISO 8601 and
-- the other date forms of the REST API).

ALTER TABLE datasets ADD COLUMN time_field TEXT;
ALTER TABLE datasets ADD COLUMN time_format TEXT;
