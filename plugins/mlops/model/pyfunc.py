"""The logged model: an MLflow pyfunc that takes validated rows and returns churn scores.

It carries the booster (cut at its best iteration) and the pipeline YAML it was trained with, and
prepares features with the same code as training (``training.feature_frame``), so batch scoring,
``mlflow models serve`` and notebooks all score a row the same way. Categorical columns are strings,
numeric and boolean columns numbers (booleans as 0/1); unknown categories count as missing.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc

if TYPE_CHECKING:
    import pandas as pd
    import xgboost
    from mlflow.types.schema import Schema

    from mlops.config.pipeline import Pipeline

ARTIFACT_PATH = "model"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the whole mlops package travels with the model
# What the served model imports; pinned to the versions training ran with.
REQUIREMENTS = ("xgboost", "pandas", "numpy", "pydantic", "PyYAML", "croniter", "scikit-learn", "pyarrow")


class TabularModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        import xgboost
        import yaml

        from mlops.config.pipeline import parse_pipeline

        self.booster = xgboost.Booster()
        self.booster.load_model(context.artifacts["booster"])
        path = context.artifacts["pipeline"]
        self.pipeline = parse_pipeline(yaml.safe_load(Path(path).read_text()), source=path)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        from mlops.training.fit import feature_frame, predict

        scores = predict(
            self.booster, feature_frame(model_input, self.pipeline), self.booster.num_boosted_rounds() - 1
        )
        return scores


def model_input(frame: pd.DataFrame, pipeline: Pipeline) -> pd.DataFrame:
    """Feature columns as the model's signature takes them: strings for categories, floats for the rest."""
    import pandas as pd

    example = {}
    for name in pipeline.features:
        column = frame[name]
        if pipeline.columns[name].type == "category":
            example[name] = column.astype("string")  # what schema enforcement takes without a copy to objects
        else:
            example[name] = pd.to_numeric(column.astype("Float64"), errors="coerce").astype("float64")
    return pd.DataFrame(example)


def requirements() -> list[str]:
    return [f"{name}=={importlib.metadata.version(name)}" for name in REQUIREMENTS]


def input_schema(pipeline: Pipeline) -> Schema:
    """The model's inputs as the pipeline YAML declares them, not as a few example rows suggest.

    Every feature is required (present); its values may be null, as validated data allows. Inferred
    from examples, a column that happened to be null in them would become optional and a numeric
    one that happened to hold integers would become ``long``.
    """
    from mlflow.types.schema import ColSpec, Schema

    return Schema(
        [
            ColSpec("string" if pipeline.columns[name].type == "category" else "double", name)
            for name in pipeline.features
        ]
    )


def log_model(booster: xgboost.Booster, pipeline_yaml: str, example: pd.DataFrame, workdir: Path) -> Any:
    """Log the pyfunc model under ``ARTIFACT_PATH`` of the active MLflow run."""
    from mlflow.models import ModelSignature, infer_signature

    from mlops.training.fit import feature_frame, predict

    pipeline = _pipeline_of(pipeline_yaml)
    scores = predict(booster, feature_frame(example, pipeline), booster.num_boosted_rounds() - 1)
    booster_path, pipeline_path = workdir / "booster.ubj", workdir / "pipeline.yaml"
    booster.save_model(booster_path)
    pipeline_path.write_text(pipeline_yaml)
    return mlflow.pyfunc.log_model(
        name=ARTIFACT_PATH,
        python_model=TabularModel(),
        artifacts={"booster": str(booster_path), "pipeline": str(pipeline_path)},
        code_paths=[str(PACKAGE_DIR)],
        signature=ModelSignature(
            inputs=input_schema(pipeline), outputs=infer_signature(example, scores).outputs
        ),
        input_example=example,
        pip_requirements=requirements(),
    )


def _pipeline_of(text: str) -> Pipeline:
    import yaml

    from mlops.config.pipeline import parse_pipeline

    return parse_pipeline(yaml.safe_load(text), source="pipeline.yaml")
