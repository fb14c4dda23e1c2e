-- livemosaic catalog schema, version 6: the time-field mapping of a mosaic dataset.
-- time_field names the metadata item that holds a file's acquisition time ("[DOMAIN:]NAME",
-- e.g. a NetCDF global attribute or a TIFF tag); time_format is the strftime format of its
-- value (NULL: ISO 8601 and the other date forms of the REST API).

ALTER TABLE datasets ADD COLUMN time_field TEXT;
ALTER TABLE datasets ADD COLUMN time_format TEXT;
