"""The ingest tests' pipeline and suite, shared."""

from tests.unit.ingest.conftest import pipeline, suite

__all__ = ["pipeline", "suite"]
