"""ImageryLayer operations against one livemosaic image service.

Usage: imagery_layer.py ROOT_URL SERVICE OUT_DIR OPTIONS_JSON

``SERVICE`` is ``Name`` or ``Folder/Name``. Images and arrays are written into ``OUT_DIR`` and
their paths reported. ``OPTIONS_JSON`` keys (all optional):

* ``size``: [width, height] of the numpy/filtered exports (default [64, 64])
* ``filter_where``: where clause for ``filter_by`` (LockRaster mosaic rule from its object ids)
* ``md_def``: a multidimensionalDefinition for a numpy export, identify and get_samples
* ``time``: an epoch-ms instant for a time-filtered query and export
* ``multidim``: also read multidimensional_info and slices
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from _common import Steps, connect

NEAREST = "RSP_NearestNeighbor"


def main(root: str, service: str, out_dir: Path, options: dict[str, Any]) -> None:
    """Open the layer through a ServicesDirectory connection and exercise it."""
    import numpy as np
    from arcgis.raster import ImageryLayer

    steps = Steps()
    sd = steps.run("connect", lambda: connect(root))
    if sd is None:
        steps.emit()
        return
    # gis=None would make the layer build an anonymous GIS() for www.arcgis.com
    # (arcgis/gis/__init__.py, _GISResource.__init__); the server's Connection is accepted as is.
    layer = ImageryLayer(f"{root}/rest/services/{service}/ImageServer", gis=sd._con)
    keys = (
        "name", "currentVersion", "extent", "initialExtent", "fullExtent", "pixelType",
        "bandCount", "pixelSizeX", "pixelSizeY", "capabilities", "hasMultidimensions",
        "hasHistograms", "maxRecordCount", "defaultMosaicMethod", "timeInfo", "objectIdField",
    )  # fmt: skip
    props = steps.run("properties", lambda: {k: layer.properties.get(k) for k in keys})
    steps.run(
        "accessors",
        lambda: {
            "band_count": layer.band_count,
            "pixel_type": layer.pixel_type,
            "raster_info": layer.raster_info,
            "tiles_only": layer.tiles_only,
            "mosaic_rule": layer.mosaic_rule,
        },
    )
    extent = steps.run("extent", lambda: dict(layer.extent))
    if props is None or extent is None:
        steps.emit()
        return
    size = options.get("size", [64, 64])

    def save_array(name: str, array: Any) -> dict[str, Any]:
        path = out_dir / f"{name}.npy"
        np.save(path, np.asarray(array))
        return {"path": str(path), "shape": list(np.asarray(array).shape)}

    steps.run(
        "export_png",
        lambda: layer.export_image(
            bbox=extent,
            size=[256, 256],
            f="image",
            export_format="png",
            save_folder=str(out_dir),
            save_file="export.png",
        ),
    )

    def export_bytes() -> dict[str, Any]:
        data = layer.export_image(bbox=extent, size=[128, 96], f="image")  # default jpgpng
        path = out_dir / "export_default.bin"
        path.write_bytes(data)
        return {"path": str(path), "length": len(data)}

    steps.run("export_bytes", export_bytes)
    steps.run("export_json", lambda: layer.export_image(bbox=extent, size=[200, 100], f="json"))
    steps.run(
        "export_numpy",
        lambda: save_array(
            "export_numpy",
            layer.export_image(bbox=extent, size=size, f="numpy_array", interpolation=NEAREST),
        ),
    )

    steps.run("query_count", lambda: layer.query(return_count_only=True))
    steps.run("query_ids", lambda: layer.query(return_ids_only=True))

    def query_all() -> dict[str, Any]:
        fset = layer.query(return_all_records=True)
        oid = props["objectIdField"] or "OBJECTID"
        return {
            "count": len(fset.features),
            "ids": sorted(f.attributes[oid] for f in fset.features),
            "geometry_type": fset.geometry_type,
            "first_geometry": fset.features[0].geometry if fset.features else None,
            "fields": [f["name"] for f in fset.fields],
        }

    steps.run("query_all", query_all)
    steps.run(
        "query_where",
        lambda: layer.query(
            where="OBJECTID <= 2", out_fields="OBJECTID,Name", return_geometry=False
        ),
    )

    cx = (extent["xmin"] + extent["xmax"]) / 2
    cy = (extent["ymin"] + extent["ymax"]) / 2
    point = {"x": cx, "y": cy, "spatialReference": extent["spatialReference"]}
    steps.run("identify", lambda: layer.identify(geometry=point))
    steps.run(
        "get_samples",
        lambda: layer.get_samples(
            geometry=point, return_first_value_only=False, out_fields="OBJECTID,Name"
        ),
    )
    steps.run("key_properties", lambda: layer.key_properties())
    steps.run("histograms", lambda: layer.histograms)
    steps.run("statistics", lambda: layer.statistics())
    steps.run("catalog_item", lambda: layer.catalog_item(1).properties)

    where = options.get("filter_where")
    if where:

        def filtered() -> dict[str, Any]:
            sub = layer.filter_by(where=where)
            array = sub.export_image(bbox=extent, size=size, f="numpy_array", interpolation=NEAREST)
            return {"mosaic_rule": sub.mosaic_rule, **save_array("filtered", array)}

        steps.run("filter_by", filtered)

    md_def = options.get("md_def")
    if md_def:
        rule = {"mosaicMethod": "esriMosaicNone", "multidimensionalDefinition": md_def}
        steps.run(
            "export_md",
            lambda: save_array(
                "export_md",
                layer.export_image(
                    bbox=extent,
                    size=size,
                    f="numpy_array",
                    interpolation=NEAREST,
                    mosaic_rule=rule,
                ),
            ),
        )
        steps.run("identify_md", lambda: layer.identify(geometry=point, mosaic_rule=rule))
        steps.run(
            "get_samples_md",
            lambda: layer.get_samples(
                geometry=point, mosaic_rule=rule, return_first_value_only=False
            ),
        )
    instant = options.get("time")
    if instant is not None:
        steps.run(
            "query_time",
            lambda: layer.query(time_filter=instant, out_fields="*", return_geometry=False),
        )
        steps.run(
            "export_time",
            lambda: save_array(
                "export_time",
                layer.export_image(
                    bbox=extent, size=size, f="numpy_array", interpolation=NEAREST, time=instant
                ),
            ),
        )
    if options.get("multidim"):
        steps.run("multidimensional_info", lambda: layer.multidimensional_info)
        steps.run("slices", lambda: layer.slices())
    steps.emit()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), json.loads(sys.argv[4]))
