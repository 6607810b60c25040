"""Object storage over the S3 API (minio SDK): SeaweedFS here, distributed MinIO in production.

Every object is written with its SHA-256 in metadata and the hash is returned for the index, so
evidence can be re-verified end to end.

Buckets made with S3 object lock (``DUALCHECK_S3_OBJECT_LOCK``) are versioned: a DELETE by name only
adds a delete marker and keeps the bytes, so deletes here remove every version by id, and a version
under a legal hold (an evidence hold, storage/holds.py) is refused by the store itself.
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from kernel.settings import Settings
from storage.credentials import s3_credentials

SHA_META = "sha256"
_CHUNK = 256 * 1024
_DELETE_BATCH = 1000  # S3 DeleteObjects accepts at most 1000 keys per request
_LIST_FOLDER_MIN = 8  # from this many keys in one folder, list the folder's versions at once
HELD_PREFIX = "held: "  # a delete_many failure whose version is under an S3 legal hold


def held_failure(error: str) -> bool:
    return error.startswith(HELD_PREFIX)


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    sha256: str
    size: int


class ObjectStoreError(RuntimeError):
    pass


class ObjectStore:
    def __init__(self, client: Minio, *, object_lock: bool = False):
        self.client = client
        self.object_lock = object_lock  # new buckets are made with object lock
        self._locked: dict[str, bool] = {}  # a bucket's lock cannot be turned off: cache the answer

    @classmethod
    def from_settings(cls, settings: Settings) -> ObjectStore:

        access, secret = s3_credentials(settings)
        client = Minio(
            settings.s3_endpoint,
            access_key=access,
            secret_key=secret,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
        return cls(client, object_lock=settings.s3_object_lock)

    # --- buckets -----------------------------------------------------------------------
    def ensure_bucket(self, bucket: str, *, object_lock: bool | None = None) -> None:
        """Make the bucket if missing (with object lock per the setting). An existing bucket is left as
        it is: S3 cannot add object lock to a bucket made without it."""
        lock = self.object_lock if object_lock is None else object_lock
        if not self.client.bucket_exists(bucket):
            try:
                self.client.make_bucket(bucket, object_lock=lock)
            except S3Error as e:  # another process made it first
                if e.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    def locked(self, bucket: str) -> bool:
        """True if the bucket has object lock (then it is versioned and legal holds apply)."""
        if bucket not in self._locked:
            try:
                self.client.get_object_lock_config(bucket)
                self._locked[bucket] = True
            except S3Error as e:
                if e.code == "NoSuchBucket":
                    return False  # not made yet: ask again later
                if e.code not in ("ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound"):
                    raise
                self._locked[bucket] = False
        return self._locked[bucket]

    # --- writes ------------------------------------------------------------------------
    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None, sha256: str | None = None,
    ) -> StoredObject:
        """``sha256``: the bytes' hash when the caller has it already (a verification hashed its capture)."""
        sha = sha256 or hashlib.sha256(data).hexdigest()
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

    # --- versions and legal holds (object-lock buckets) -----------------------------------------
    def versions(self, bucket: str, keys: Iterable[str]) -> dict[str, list[str]]:
        """Every stored version id of each key (delete markers included; [] if none).

        Keys sharing a "folder" (a camera-hour of segments) are listed with one request."""
        want = set(keys)
        out: dict[str, list[str]] = {k: [] for k in want}
        folders: dict[str, list[str]] = {}
        for k in want:
            folders.setdefault(k.rsplit("/", 1)[0] + "/" if "/" in k else k, []).append(k)
        prefixes = []
        for folder, ks in folders.items():
            # a few keys of a big folder (captures of a day): list each key, not the whole folder
            prefixes += [folder] if len(ks) >= _LIST_FOLDER_MIN else ks
        for prefix in prefixes:
            for obj in self.client.list_objects(bucket, prefix=prefix, recursive=True, include_version=True):
                if obj.object_name in out and obj.version_id and obj.version_id not in out[obj.object_name]:
                    out[obj.object_name].append(obj.version_id)
        return out

    def set_legal_hold(self, bucket: str, keys: Iterable[str], on: bool) -> int:
        """Turn the S3 legal hold on or off for every version of the keys (object-lock buckets only;
        a no-op elsewhere). Returns the number of versions changed."""
        if not self.locked(bucket):
            return 0
        n = 0
        for key, vids in self.versions(bucket, keys).items():
            for vid in vids:
                try:
                    (self.client.enable_object_legal_hold if on else self.client.disable_object_legal_hold)(
                        bucket, key, version_id=vid)
                except S3Error as e:
                    if e.code in ("MethodNotAllowed", "NoSuchVersion", "NoSuchKey"):  # a delete marker, or gone
                        continue
                    raise
                n += 1
        return n

    def legal_hold(self, bucket: str, key: str, version_id: str | None = None) -> bool:
        try:
            return self.client.is_object_legal_hold_enabled(bucket, key, version_id=version_id)
        except S3Error as e:
            if e.code in ("NoSuchObjectLegalHold", "NoSuchKey", "NoSuchVersion", "MethodNotAllowed",
                          "InvalidRequest"):
                return False
            raise

    # --- deletes -----------------------------------------------------------------------
    def delete_many(self, bucket: str, keys: Iterable[str]) -> list[tuple[str, str]]:
        """Delete keys in batches of 1000 (S3 multi-object delete). Returns (key, error) failures.

        Deleting a key that does not exist is not a failure (S3 semantics), so reruns are idempotent.
        In an object-lock bucket every version of the key is deleted by id (a delete by name would only
        hide it); a version under legal hold is refused by the store and reported as a failure
        "held: ..." (see ``held_failure``), the key's other versions are deleted.
        """
        failures: list[tuple[str, str]] = []
        batch: list[DeleteObject] = []
        versioned = self.locked(bucket)

        def flush() -> None:
            if not batch:
                return
            errors = self.client.remove_objects(bucket, list(batch))
            for err in errors:  # the SDK sends lazily: iterating performs the request
                held = versioned and self.legal_hold(bucket, err.name, err.version_id)
                failures.append((err.name, f"{HELD_PREFIX if held else ''}{err.code}: {err.message}"))
            batch.clear()

        def add(obj: DeleteObject) -> None:
            batch.append(obj)
            if len(batch) >= _DELETE_BATCH:
                flush()

        keys = list(keys)
        if versioned:
            for key, vids in self.versions(bucket, keys).items():
                for vid in vids:
                    add(DeleteObject(key, vid))
        else:
            for key in keys:
                add(DeleteObject(key))
        flush()
        return failures


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
