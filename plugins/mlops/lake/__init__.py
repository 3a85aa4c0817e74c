"""The lake: partitions on local disk or S3 behind one ``Storage`` interface, committed atomically.

``storage``: the layout (``<pipeline>/<zone>/ds=<key>/``), the manifest commit protocol and the
readers every stage uses. ``report_pages``: which committed report files may be served over HTTP
and under which headers, and the links that point to them. Pure Python, no Airflow import.
"""

from mlops import names_of

__getattr__ = names_of(__name__, "storage")
