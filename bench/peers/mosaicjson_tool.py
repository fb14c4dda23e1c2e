"""MosaicJSON for TiTiler, run in the peers' virtualenv: create a mosaic of files, or add files
to one (what a producer must do for TiTiler to see a new file). Prints the seconds the work took.

    .venv-peers/bin/python bench/peers/mosaicjson_tool.py create OUT.json LIST.txt
    .venv-peers/bin/python bench/peers/mosaicjson_tool.py update OUT.json FILE...
"""

import json
import sys
import time

from cogeo_mosaic.backends import MosaicBackend
from cogeo_mosaic.mosaic import MosaicJSON
from cogeo_mosaic.utils import get_footprints


def main() -> None:
    command, out, *rest = sys.argv[1:]
    t0 = time.perf_counter()
    if command == "create":
        with open(rest[0]) as f:
            files = [line.strip() for line in f if line.strip()]
        mosaic = MosaicJSON.from_urls(files, quiet=True)
        with MosaicBackend(out, mosaic_def=mosaic) as backend:
            backend.write(overwrite=True)
    elif command == "update":
        with MosaicBackend(out) as backend:
            backend.update(get_footprints(rest, quiet=True), add_first=True, quiet=True)
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps({"seconds": time.perf_counter() - t0}))


if __name__ == "__main__":
    main()
