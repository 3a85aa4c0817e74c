"""A committed partition's Parquet parts read and written in batches of rows, never whole.

Every stage that reads rows (monitor, score, the training iterator) reads them through
``parquet_batches``: one pandas frame of at most ``batch_rows`` rows at a time, the parts in the
order of their names (``part-00000``, ``part-00001``, ...). Memory is one part's compressed bytes and
one batch, whatever the partition's size. pyarrow and pandas are imported inside the functions.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from mlops.lake.storage import Storage, iter_partition, read_manifest

if TYPE_CHECKING:
    import pandas as pd


def part_name(index: int) -> str:
    """The name of a partition's ``index``-th Parquet part: names sort in the order of the rows."""
    return f"part-{index:05d}.parquet"


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """One frame as a Parquet file (no index), the form every zone's part files take."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def parquet_batches(
    storage: Storage,
    directory: str,
    *,
    columns: Sequence[str] | None = None,
    batch_rows: int | None = None,
) -> Iterator[pd.DataFrame]:
    """The partition's rows as frames of at most ``batch_rows`` rows (None: one frame per part).

    Raises ``PartitionMissing`` when the partition is not committed, or a re-run replaced it while
    this read (see ``iter_partition``).
    """
    import pyarrow.parquet as pq

    for _, data in iter_partition(storage, directory):
        parquet = pq.ParquetFile(io.BytesIO(data))
        if batch_rows is None or parquet.metadata.num_rows <= batch_rows:
            yield parquet.read(columns=list(columns) if columns is not None else None).to_pandas()
            continue
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=list(columns) if columns else None):
            yield batch.to_pandas()


def manifest_rows(storage: Storage, directory: str) -> int | None:
    """The row count a partition's writer recorded in its manifest (``extra.rows``), if any."""
    rows = read_manifest(storage, directory).extra.get("rows")
    return int(rows) if rows is not None else None
