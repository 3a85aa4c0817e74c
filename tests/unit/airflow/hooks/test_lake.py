"""``storage_for`` and ``LakeHook``: one Storage over local disk or S3 (a moto server), the same answers."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from mlops.airflow.hooks.lake import LakeHook, S3Storage, storage_for
from mlops.lake.storage import LocalStorage, Storage


@pytest.mark.parametrize(
    ("root", "folder"),
    [
        pytest.param("{tmp}/lake", "{tmp}/lake", id="a-path"),
        pytest.param("file://{tmp}/lake", "{tmp}/lake", id="a-file-uri"),
    ],
)
def test_a_local_root_is_local_storage(tmp_path: Path, root: str, folder: str) -> None:
    storage = storage_for(root.format(tmp=tmp_path))
    assert type(storage) is LocalStorage
    assert storage.root == Path(folder.format(tmp=tmp_path))
    assert storage.uri("churn/raw") == f"{tmp_path}/lake/churn/raw"


@pytest.mark.parametrize(
    ("root", "bucket", "prefix", "uri"),
    [
        pytest.param("s3://lake/prod/v1/", "lake", "prod/v1", "s3://lake/prod/v1/churn/raw", id="prefix"),
        pytest.param("s3://lake", "lake", "", "s3://lake/churn/raw", id="bucket-only"),
    ],
)
def test_an_s3_root_is_s3_storage_on_the_connection_given(
    root: str, bucket: str, prefix: str, uri: str
) -> None:
    storage = storage_for(root, "aws_lake")
    assert type(storage) is S3Storage
    assert (storage.bucket, storage.prefix, storage.aws_conn_id) == (bucket, prefix, "aws_lake")
    assert storage.uri("churn/raw") == uri
    assert storage_for(root).aws_conn_id == "aws_default"


@pytest.mark.parametrize(
    ("root", "message"),
    [
        pytest.param(
            "gs://bucket/lake",
            "unsupported lake root 'gs://bucket/lake': use a local path or s3://bucket/prefix",
            id="another-scheme",
        ),
        pytest.param(
            "file://s3://bucket/lake",
            "unsupported lake root 'file://s3://bucket/lake': use a local path or s3://bucket/prefix",
            id="a-uri-inside-a-file-uri",
        ),
        pytest.param("s3:///lake", "not an S3 URI with a bucket: 's3:///lake'", id="s3-without-a-bucket"),
    ],
)
def test_a_root_that_is_neither_is_refused(root: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        storage_for(root)
    assert type(raised.value) is ValueError and str(raised.value) == message


@pytest.fixture(params=["local", "s3-prefix", "s3-bucket-only"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """The same Storage contract on local disk and on a moto S3 server (through ``aws_default``)."""
    if request.param == "local":
        return storage_for(str(tmp_path / "lake"))
    bucket = f"hooks-{uuid.uuid4().hex[:12]}"
    request.getfixturevalue("s3_client").create_bucket(Bucket=bucket)
    return storage_for(f"s3://{bucket}/lake" if request.param == "s3-prefix" else f"s3://{bucket}")


FILES = {
    "churn/raw/ds=2026-01-05/part-000.csv": b"a,b\n1,2\n",
    "churn/raw/ds=2026-01-05/part-001.csv": b"a,b\n3,4\n5,6\n",
    "churn/raw/ds=2026-01-06/part-000.csv": b"a,b\n",
    "churn/rawer/ds=2026-01-05/x.csv": b"not under churn/raw",
    "other/ds=2026-01-05/y.csv": b"another pipeline",
}


def test_local_and_s3_storage_give_the_same_answers(storage: Storage) -> None:
    for path, data in FILES.items():
        storage.write_bytes(path, data)
    storage.write_bytes("churn/raw/ds=2026-01-06/part-000.csv", b"a,b\n7,8\n")  # rewritten in place

    assert storage.read_bytes("churn/raw/ds=2026-01-06/part-000.csv") == b"a,b\n7,8\n"
    assert storage.exists("churn/raw/ds=2026-01-05/part-001.csv") is True
    assert storage.exists("churn/raw/ds=2026-01-05") is False  # a folder is not a file
    assert storage.exists("churn/raw/ds=2026-01-07/part-000.csv") is False
    assert storage.list_files("churn/raw") == [
        "churn/raw/ds=2026-01-05/part-000.csv",
        "churn/raw/ds=2026-01-05/part-001.csv",
        "churn/raw/ds=2026-01-06/part-000.csv",
    ]
    assert storage.list_files("churn/raw/") == storage.list_files("churn/raw")
    assert storage.list_files("") == sorted(FILES)  # the whole root
    assert storage.list_files("churn/none") == []
    stats = storage.stat_files("churn/raw/ds=2026-01-05")
    assert [(s.path, s.size, s.link) for s in stats] == [
        ("churn/raw/ds=2026-01-05/part-000.csv", 8, False),
        ("churn/raw/ds=2026-01-05/part-001.csv", 12, False),
    ]
    assert all(s.mtime > 0 and s.tag for s in stats)
    assert [s.path for s in storage.stat_files("")] == sorted(FILES)

    storage.delete(["churn/raw/ds=2026-01-05/part-000.csv", "churn/raw/ds=2026-01-05/never-written.csv"])
    storage.delete([])
    assert storage.list_files("churn/raw/ds=2026-01-05") == ["churn/raw/ds=2026-01-05/part-001.csv"]
    assert_missing(storage, "churn/raw/ds=2026-01-05/part-000.csv")


def assert_missing(storage: Storage, path: str) -> None:
    """Reading a file that is not there: FileNotFoundError on disk, S3's 404 (what the lake's readers
    recognise as missing) on S3."""
    if isinstance(storage, LocalStorage):
        with pytest.raises(FileNotFoundError) as raised:
            storage.read_bytes(path)
        assert type(raised.value) is FileNotFoundError
        return
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as raised:
        storage.read_bytes(path)
    assert raised.value.response["Error"]["Code"] == "404"


def test_the_lake_hook_reads_and_writes_through_the_storage_of_its_root(s3_client) -> None:
    s3_client.create_bucket(Bucket="hook-lake")
    hook = LakeHook(root="s3://hook-lake/prefix")
    assert type(hook.storage) is S3Storage and hook.storage is hook.storage  # built once
    hook.write_bytes("churn/raw/ds=2026-01-05/part-000.csv", b"a\n1\n")
    found = s3_client.get_object(Bucket="hook-lake", Key="prefix/churn/raw/ds=2026-01-05/part-000.csv")
    assert found["Body"].read() == b"a\n1\n"
    assert hook.read_bytes("churn/raw/ds=2026-01-05/part-000.csv") == b"a\n1\n"
    assert hook.exists("churn/raw/ds=2026-01-05/part-000.csv") is True
    assert hook.list_files("churn") == ["churn/raw/ds=2026-01-05/part-000.csv"]
    assert [s.path for s in hook.stat_files("churn")] == ["churn/raw/ds=2026-01-05/part-000.csv"]
    assert hook.uri() == "s3://hook-lake/prefix/"
    assert hook.uri("churn") == "s3://hook-lake/prefix/churn"
