-- livemosaic catalog schema, version 4: time as a dimension of the items R*Tree.
-- A live feed re-images the same places, so an extent alone matches every acquisition of
-- the stack under it; with [t_min, t_max] in the R*Tree a time window is answered by the
-- index too. An item's interval is [time, time_end]; items without a time span the whole
-- float range, so a query without a time still finds them (and the exact checks on
-- i.time / i.time_end, which every query keeps, drop them from time windows). The R*Tree
-- stores 32-bit floats rounded outwards (epoch ms lose about 1e5 ms), so it only narrows
-- the candidates; the exact checks decide. The values below must match
-- rows.rtree_time_range().

DROP TABLE items_rtree;

-- Bounding boxes; ds_min = ds_max = dataset id, so one lookup never visits other datasets.
CREATE VIRTUAL TABLE items_rtree USING rtree (
    id, xmin, xmax, ymin, ymax, ds_min, ds_max, t_min, t_max
);

INSERT INTO items_rtree (id, xmin, xmax, ymin, ymax, ds_min, ds_max, t_min, t_max)
SELECT
    id, xmin, xmax, ymin, ymax, dataset_id, dataset_id,
    CASE WHEN time IS NULL THEN -3.4e38 ELSE min(time, coalesce(time_end, time)) END,
    CASE WHEN time IS NULL THEN 3.4e38 ELSE max(time, coalesce(time_end, time)) END
FROM items;
