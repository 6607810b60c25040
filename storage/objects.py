"""Object storage over the S3 API (minio SDK): SeaweedFS here, distributed MinIO in production.

Every object is written with its SHA-256 in metadata and the hash is returned for the index, so
evidence can be re-verified end to end.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Iterable, Iterator

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from dualcheck.settings import Settings

SHA_META = "sha256"
_CHUNK = 256 * 1024
_DELETE_BATCH = 1000  # S3 DeleteObjects accepts at most 1000 keys per request


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    sha256: str
    size: int


class ObjectStoreError(RuntimeError):
    pass


class ObjectStore:
    def __init__(self, client: Minio):
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> ObjectStore:
        from storage.credentials import s3_credentials

        access, secret = s3_credentials(settings)
        client = Minio(
            settings.s3_endpoint,
            access_key=access,
            secret_key=secret,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
        return cls(client)

    # --- buckets -----------------------------------------------------------------------
    def ensure_bucket(self, bucket: str, *, object_lock: bool = False) -> None:
        if not self.client.bucket_exists(bucket):
            try:
                self.client.make_bucket(bucket, object_lock=object_lock)
            except S3Error as e:  # another process made it first
                if e.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    # --- writes ------------------------------------------------------------------------
    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> StoredObject:
        sha = hashlib.sha256(data).hexdigest()
        meta = {SHA_META: sha, **(metadata or {})}
        self.client.put_object(bucket, key, io.BytesIO(data), len(data), content_type=content_type, metadata=meta)
        return StoredObject(bucket, key, sha, len(data))

    def put_file(
        self, bucket: str, key: str, path: Path, content_type: str = "application/octet-stream",
        sha256: str | None = None, metadata: dict[str, str] | None = None,
    ) -> StoredObject:
        path = Path(path)
        sha = sha256 or file_sha256(path)
        size = path.stat().st_size
        meta = {SHA_META: sha, **(metadata or {})}
        with path.open("rb") as fh:
            self.client.put_object(bucket, key, fh, size, content_type=content_type, metadata=meta)
        return StoredObject(bucket, key, sha, size)

    # --- reads -------------------------------------------------------------------------
    def get_bytes(self, bucket: str, key: str) -> bytes:
        resp = self.client.get_object(bucket, key)
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    def get_range(self, bucket: str, key: str, offset: int, length: int) -> bytes:
        resp = self.client.get_object(bucket, key, offset=offset, length=length)
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    def stream(self, bucket: str, key: str, offset: int = 0, length: int = 0) -> Iterator[bytes]:
        """Yield the object (or a range of it) in chunks without holding it in memory."""
        resp = self.client.get_object(bucket, key, offset=offset, length=length)
        try:
            yield from resp.stream(_CHUNK)
        finally:
            resp.close()
            resp.release_conn()

    def stat(self, bucket: str, key: str) -> StoredObject | None:
        try:
            st = self.client.stat_object(bucket, key)
        except S3Error as e:
            if e.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return None
            raise
        meta = {k.lower(): v for k, v in (st.metadata or {}).items()}
        sha = meta.get(f"x-amz-meta-{SHA_META}", "")
        return StoredObject(bucket, key, sha, st.size or 0)

    def exists(self, bucket: str, key: str) -> bool:
        return self.stat(bucket, key) is not None

    def presigned_get(self, bucket: str, key: str, expires: timedelta = timedelta(minutes=10)) -> str:
        return self.client.presigned_get_object(bucket, key, expires=expires)

    def list_keys(self, bucket: str, prefix: str = "") -> Iterator[str]:
        for obj in self.client.list_objects(bucket, prefix=prefix, recursive=True):
            yield obj.object_name

    # --- deletes -----------------------------------------------------------------------
    def delete_many(self, bucket: str, keys: Iterable[str]) -> list[tuple[str, str]]:
        """Delete keys in batches of 1000 (S3 multi-object delete). Returns (key, error) failures.

        Deleting a key that does not exist is not a failure (S3 semantics), so reruns are idempotent.
        """
        failures: list[tuple[str, str]] = []
        batch: list[str] = []

        def flush() -> None:
            if not batch:
                return
            errors = self.client.remove_objects(bucket, [DeleteObject(k) for k in batch])
            for err in errors:  # the SDK sends lazily: iterating performs the request
                failures.append((err.name, f"{err.code}: {err.message}"))
            batch.clear()

        for key in keys:
            batch.append(key)
            if len(batch) >= _DELETE_BATCH:
                flush()
        flush()
        return failures


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
