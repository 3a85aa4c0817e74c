"""The HTTP application: ``POST /<pipeline>/predict``, ``/health``, ``/ready``, ``/metrics``.

FastAPI on uvicorn: an ASGI server with one event loop per worker process, which is what a
CPU-bound scorer needs (no thread pool hand-off per request; scale with ``--workers``), and the stack
Airflow's own API server runs on, so it adds no dependency. The routes take the raw body and read it
with ``mlops.serving.rows``, not with pydantic models: the checks and their messages are the
pipeline schema's, and a bad row gets a 422 naming its row and field, never a 500.

Answer: ``{"model_version": "3", "predictions": [{"score": 0.12, "label": 0}, ...]}``, with the key
echoed in each prediction when the request sent it, and the request id in the ``X-Request-ID``
header (the client's, or a new one). No Airflow import.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from mlops.serving.rows import BadBody, BadRows, RowReader
from mlops.serving.served import served_frame

if TYPE_CHECKING:
    import numpy as np

    from mlops.config.pipeline import Pipeline
    from mlops.serving.champion import ChampionHolder, Loaded
    from mlops.serving.metrics import ServingMetrics
    from mlops.serving.rows import Rows
    from mlops.serving.served import ServedWriter

log = logging.getLogger(__name__)


@dataclass
class Service:
    """What the application serves: the pipelines, their champions, metrics and served-rows writers."""

    pipelines: dict[str, Pipeline]
    holder: ChampionHolder
    metrics: ServingMetrics
    writers: dict[str, ServedWriter]
    readers: dict[str, RowReader] = field(init=False)

    def __post_init__(self) -> None:
        self.readers = {name: RowReader(pipeline) for name, pipeline in self.pipelines.items()}

    def start(self) -> None:
        self.holder.start()
        for writer in self.writers.values():
            writer.start()

    def stop(self) -> None:
        self.holder.stop()
        for writer in self.writers.values():
            writer.stop()


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    version: str | None = None
    rows: int = 0


def predict(service: Service, name: str, body: bytes, content_type: str, request_id: str) -> Answer:
    """One prediction request, start to end: the model in force is read once, here."""
    pipeline = service.pipelines[name]
    loaded = service.holder.get(name)
    if loaded is None:
        missing = service.holder.missing().get(name, "not loaded yet")
        return Answer(503, {"detail": f"{name}: no verified champion in force ({missing})"})
    try:
        rows = service.readers[name].read(body, content_type)
    except BadRows as exc:
        return Answer(422, {"detail": exc.detail()}, loaded.version)
    except BadBody as exc:
        return Answer(exc.status, {"detail": str(exc)}, loaded.version)
    scores = _scores(loaded, rows, pipeline)
    served_at = dt.datetime.now(dt.UTC)
    writer = service.writers.get(name)
    if writer is not None:
        writer.add(
            served_frame(
                pipeline, rows, scores, version=loaded.version, request_id=request_id, served_at=served_at
            )
        )
    return Answer(200, _answer(pipeline, rows, scores, loaded.version), loaded.version, len(rows))


def _scores(loaded: Loaded, rows: Rows, pipeline: Pipeline) -> np.ndarray:
    import numpy as np

    from mlops.model.pyfunc import model_input

    return np.asarray(loaded.model.predict(model_input(rows.typed, pipeline)), dtype="float64")


def _answer(pipeline: Pipeline, rows: Rows, scores: np.ndarray, version: str) -> dict[str, Any]:
    threshold = pipeline.training.threshold
    predictions: list[dict[str, Any]] = [
        {"score": score, "label": int(score >= threshold)} for score in scores.tolist()
    ]
    if rows.has_key:
        keys = rows.typed[pipeline.key].astype(object).where(rows.typed[pipeline.key].notna(), None)
        for prediction, key in zip(predictions, keys.tolist(), strict=True):
            prediction[pipeline.key] = key
    return {"model_version": version, "predictions": predictions}


def create_app(service: Service) -> FastAPI:
    """The application over ``service``; its lifespan starts and stops the poll and flush threads."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()  # the last served rows are committed here

    app = FastAPI(title="mlops serving", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/{name}/predict")
    async def predict_route(name: str, request: Request) -> Response:
        started = time.perf_counter()
        if name not in service.pipelines:
            known = sorted(service.pipelines)
            return JSONResponse({"detail": f"no pipeline {name!r} is served here; served: {known}"}, 404)
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        body = await request.body()
        try:
            answer = predict(service, name, body, request.headers.get("content-type", ""), request_id)
        except Exception:  # a scoring failure is answered, counted and logged
            log.exception("%s: request %s failed", name, request_id)
            loaded = service.holder.get(name)
            answer = Answer(
                500, {"detail": "scoring failed (see the service's log)"}, loaded and loaded.version
            )
        service.metrics.answered(
            name, answer.version, answer.status, time.perf_counter() - started, answer.rows
        )
        return Response(
            json.dumps(answer.body, allow_nan=False),
            status_code=answer.status,
            media_type="application/json",
            headers={"X-Request-ID": request_id},
        )

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> Response:
        missing = service.holder.missing()
        versions = {
            name: loaded.version for name in service.pipelines if (loaded := service.holder.get(name))
        }
        body = {"ready": not missing, "models": versions, "missing": missing}
        return JSONResponse(body, status_code=503 if missing else 200)

    @app.get("/metrics")
    async def metrics() -> Response:
        content, media_type = service.metrics.render()
        return Response(content, media_type=media_type)

    return app
