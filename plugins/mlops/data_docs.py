"""Data Docs: the Great Expectations HTML page for one validation result.

``plain_json`` is the JSON form of a GX result that is stored and rendered (``mlops.validation``
keeps its results in that form). Pure Python: no Airflow import. ``great_expectations`` takes
seconds to import, so it is imported inside ``render_data_docs``, never at module level.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def plain_json(result: Any) -> dict[str, Any]:
    """A GX result object as plain JSON-able dicts and lists: the form results are stored in."""
    # A round trip through json leaves plain floats: GX's own renderer chokes on numpy 2 scalars
    # (num_to_str parses repr(), which is "np.float64(0.5)").
    return json.loads(json.dumps(result.to_json_dict()))


def render_data_docs(result: Mapping[str, Any] | Any) -> str:
    """A GX Data Docs HTML page for one validation result (a result object or its JSON dict)."""
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationSuiteValidationResultSchema,
    )
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    if isinstance(result, ExpectationSuiteValidationResult):
        result = plain_json(result)
    result = ExpectationSuiteValidationResultSchema().load(dict(result))
    document = ValidationResultsPageRenderer().render(result)
    return DefaultJinjaPageView().render(document)
