"""Airflow plugin: the Models view, a navigation entry of the Airflow UI served by the API server.

``/mlops-models/`` lists every pipeline the user may read with its champion and a health mark;
``/mlops-models/pipelines/<name>`` draws the pipeline's model life (champion timeline, data health,
drift, scoring, approvals). ``/mlops-models/api/pipelines[/<name>]`` returns the same data as JSON.
Every route needs Airflow's login (the UI's session cookie or a bearer token); a pipeline shows
only to users allowed to read its DAGs. Pages are server-rendered SVG and HTML under a CSP that
lets no script run and no request leave the page. The navigation entry (``external_views``) opens
the overview inside the UI.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Response

ROUTE = "/mlops-models"
# As the report pages' CSP (``mlops.lake.report_pages``) less ``sandbox``: these pages hold no value
# that is not escaped, and their links (a pipeline's page, its reports) must carry the login cookie.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _app() -> FastAPI:
    from airflow.api_fastapi.core_api.security import get_user

    app = FastAPI(title="MLOps models", docs_url=None, redoc_url=None, openapi_url=None)
    state: dict[str, object] = {}

    def source():  # built on the first request, in the API server
        from mlops.airflow.ui_pages import ModelsSource

        if "source" not in state:
            state["source"] = ModelsSource()
        return state["source"]

    def readable(user) -> tuple[dict, list[str]]:  # unannotated: see mlops_reports
        from mlops.airflow.ui_pages import may_read

        pipelines, problems = source().pipelines()
        return {n: p for n, p in pipelines.items() if may_read(n, user)}, problems

    def one(name: str, user):
        pipelines, _ = readable(user)
        if name not in pipelines:
            raise HTTPException(404, f"no pipeline {name!r} that you may read")
        return pipelines[name]

    def html(body: str) -> Response:
        return Response(body, media_type="text/html; charset=utf-8", headers=HEADERS)

    @app.get("/")
    def overview_page(user=Depends(get_user)) -> Response:  # noqa: B008
        from mlops.views.page import overview_page

        pipelines, problems = readable(user)
        return html(overview_page([source().overview(p) for p in pipelines.values()], problems=problems))

    @app.get("/pipelines/{name}")
    def pipeline_page(name: str, user=Depends(get_user)) -> Response:  # noqa: B008
        from mlops.views.page import pipeline_page

        data = source().detail(one(name, user))
        return html(pipeline_page(data, mlflow_ui=source().mlflow_ui(), required_actions="/required_actions"))

    @app.get("/api/pipelines")
    def pipelines_json(user=Depends(get_user)) -> dict:  # noqa: B008
        pipelines, problems = readable(user)
        return {"pipelines": [source().overview(p) for p in pipelines.values()], "problems": problems}

    @app.get("/api/pipelines/{name}")
    def pipeline_json(name: str, user=Depends(get_user)) -> dict:  # noqa: B008
        return source().detail(one(name, user))

    return app


class MlopsModelsPlugin(AirflowPlugin):
    name = "mlops_models"
    fastapi_apps = [{"app": _app(), "url_prefix": ROUTE, "name": "MLOps models"}]
    external_views = [
        {
            "name": "Models",
            "href": ROUTE.lstrip("/") + "/",
            "url_route": "models",
            "destination": "nav",
            "nav_top_level": True,
        }
    ]
