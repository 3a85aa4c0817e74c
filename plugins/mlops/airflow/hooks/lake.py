"""LakeHook: bytes in the lake or the landing area, on local disk or S3, behind one interface."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow.sdk import BaseHook

from mlops.lake.storage import FileStat, LocalStorage, Storage

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook


class S3Storage:
    """Storage under ``s3://bucket/prefix`` through the Amazon provider's ``S3Hook``.

    Credentials and an optional ``endpoint_url`` (MinIO, a test server) come from the Airflow
    connection; nothing is written into the process environment.
    """

    def __init__(self, root: str, aws_conn_id: str) -> None:
        bucket, _, prefix = root.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"not an S3 URI with a bucket: {root!r}")
        self.bucket, self.prefix, self.aws_conn_id = bucket, prefix.strip("/"), aws_conn_id

    @cached_property
    def hook(self) -> S3Hook:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id)

    def _key(self, path: str) -> str:
        return f"{self.prefix}/{path}" if self.prefix else path

    def _folder(self, prefix: str) -> str:
        """The key prefix of the objects under ``prefix``: ``<key>/``, or the whole bucket ("") for a
        root without a prefix listed from its top (a prefix of "/" would match no key)."""
        key = self._key(prefix).rstrip("/")
        return f"{key}/" if key else ""

    def read_bytes(self, path: str) -> bytes:
        return self.hook.get_key(self._key(path), self.bucket).get()["Body"].read()

    def write_bytes(self, path: str, data: bytes) -> None:
        self.hook.load_bytes(data, self._key(path), self.bucket, replace=True)

    def open_read(self, path: str) -> BinaryIO:
        """The object's body as a stream (botocore's StreamingBody: read(n), close())."""
        return self.hook.get_key(self._key(path), self.bucket).get()["Body"]

    def write_stream(self, path: str, stream: BinaryIO) -> int:
        """Upload a stream of any size: boto3's managed transfer sends it in parts (multipart above
        8 MB), so memory is a few parts, and the object appears only once every part is in."""
        counted = _Counting(stream)
        self.hook.load_file_obj(counted, self._key(path), self.bucket, replace=True)
        return counted.size

    def exists(self, path: str) -> bool:
        return self.hook.check_for_key(self._key(path), self.bucket)

    def list_files(self, prefix: str) -> list[str]:
        keys = self.hook.list_keys(self.bucket, prefix=self._folder(prefix))
        strip = len(self.prefix) + 1 if self.prefix else 0
        return sorted(key[strip:] for key in keys)

    def stat_files(self, prefix: str) -> list[FileStat]:
        """Each object under ``prefix`` with its size, upload time and ETag (S3 has no links; an
        object is visible only once its upload completed)."""
        strip = len(self.prefix) + 1 if self.prefix else 0
        found = self.hook.get_file_metadata(self._folder(prefix), self.bucket)
        return sorted(
            (
                FileStat(o["Key"][strip:], o["Size"], o["LastModified"].timestamp(), o.get("ETag", ""))
                for o in found
            ),
            key=lambda entry: entry.path,
        )

    def delete(self, paths: list[str]) -> None:
        if paths:
            self.hook.delete_objects(self.bucket, [self._key(p) for p in paths])

    def uri(self, path: str) -> str:
        return f"s3://{self.bucket}/{self._key(path)}"


class _Counting:
    """A read-only stream that counts the bytes read through it."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream, self.size = stream, 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.stream.read(n)
        self.size += len(chunk)
        return chunk


def storage_for(root: str, aws_conn_id: str = "aws_default") -> Storage:
    """The storage behind a root: ``s3://bucket/prefix`` through the Amazon provider, else local disk.

    The one place that chooses; the lake hook, the scenario CLI and the report CLI all ask here.
    """
    if root.startswith("s3://"):
        return S3Storage(root, aws_conn_id)
    if "://" in root.removeprefix("file://"):
        raise ValueError(f"unsupported lake root {root!r}: use a local path or s3://bucket/prefix")
    return LocalStorage(root.removeprefix("file://"))


class LakeHook(BaseHook):
    """Read and write files under a root that is a local path or ``s3://bucket/prefix``.

    :param root: the root; relative paths given to the methods are joined to it.
    :param aws_conn_id: the Airflow connection used for S3 roots.
    """

    conn_name_attr = "aws_conn_id"
    hook_name = "MLOps lake"

    def __init__(self, root: str, aws_conn_id: str = "aws_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = root
        self.aws_conn_id = aws_conn_id

    @cached_property
    def storage(self) -> Storage:
        return storage_for(self.root, self.aws_conn_id)

    def read_bytes(self, path: str) -> bytes:
        return self.storage.read_bytes(path)

    def write_bytes(self, path: str, data: bytes) -> None:
        self.storage.write_bytes(path, data)

    def exists(self, path: str) -> bool:
        return self.storage.exists(path)

    def list_files(self, prefix: str) -> list[str]:
        return self.storage.list_files(prefix)

    def stat_files(self, prefix: str) -> list[FileStat]:
        return self.storage.stat_files(prefix)

    def uri(self, path: str = "") -> str:
        return self.storage.uri(path)
