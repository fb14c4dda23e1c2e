"""Object stores that rasters may be read from (S3 and S3-compatible servers)."""

from livemosaic.adapters.objects.s3 import S3ObjectStore, object_store_for

__all__ = ["S3ObjectStore", "object_store_for"]
