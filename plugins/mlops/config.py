"""Pipeline configuration: one YAML file per pipeline, loaded into typed models.

A user adds a dataset by adding ``include/pipelines/<name>.yaml`` (and its generated suite).
Every error names the file and the key, so a broken file can be fixed without reading code.
Pure Python: no Airflow import, usable from a notebook.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PIPELINE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
ColumnType = Literal["int", "float", "category", "bool", "timestamp", "string"]
Device = Literal["auto", "cpu", "cuda"]


class ConfigError(ValueError):
    """A pipeline YAML file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    # Unknown keys are errors: a typo must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_cron(value: str) -> str:
    from croniter import croniter  # light, and only needed when a config is loaded

    if value.startswith("@") and value in {"@daily", "@weekly", "@hourly", "@monthly", "@yearly"}:
        return value
    if not croniter.is_valid(value):
        raise ValueError(f"not a valid cron expression: {value!r}")
    return value


class Column(_Strict):
    type: ColumnType
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    values: list[str] | None = Field(default=None, description="allowed categories")
    max_null_fraction: float = Field(
        default=0.2, ge=0, le=1, description="nullable columns: the null share above which a partition fails"
    )

    @model_validator(mode="after")
    def _bounds(self) -> Column:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.values is not None and self.type != "category":
            raise ValueError("'values' only applies to columns of type 'category'")
        if self.type == "category" and not self.values:
            raise ValueError("a 'category' column needs its allowed 'values'")
        return self


class Source(_Strict):
    uri: str = Field(description="relative to the landing root, or an absolute path or s3:// URI")
    format: Literal["csv", "parquet"] = "csv"
    null_values: list[str] = Field(
        default=[""],
        description='CSV strings read as null; the default, only the empty field ("NA" or "null" stay text)',
    )
    wait_timeout_minutes: int = Field(default=60, ge=0)
    poke_interval_seconds: int = Field(default=60, ge=5)


class RowCount(_Strict):
    min: int = Field(ge=0)
    max: int = Field(ge=1)


class MeanBetween(_Strict):
    column: str
    min: float
    max: float


class Validation(_Strict):
    suite: str = Field(description="path of the generated suite JSON, relative to include/")

    @field_validator("suite")
    @classmethod
    def _inside_include(cls, value: str) -> str:
        # `make suites` writes this file: never outside include/.
        parts = value.replace("\\", "/").split("/")
        if value.startswith("/") or ".." in parts or not value.endswith(".json"):
            raise ValueError("must be a relative .json path inside include/ (no '..', not absolute)")
        return value

    max_quarantine_fraction: float = Field(default=0.05, ge=0, le=1)
    row_count: RowCount
    mean_between: list[MeanBetween] = Field(default_factory=list)


class Schedules(_Strict):
    ingest: str = "@daily"
    train: str = "0 4 * * 1"
    catchup: bool = True
    # How many ingest days may run at once. 1 replays history in order, the way days arrive in
    # production, so monitoring and scoring of each day see that day's champion.
    max_active_ingest_runs: int = Field(default=16, ge=1, le=64)
    # Train runs that may be active at once. Runs waiting for the past to settle hold a slot
    # (in reschedule mode, no worker); a drift retrain must find one free, so keep this above the
    # number of scheduled trains a catch-up can queue ahead of ingestion.
    max_active_train_runs: int = Field(default=32, ge=2, le=256)
    # How often a stage waiting for the past (or for its window) looks again, and how long it
    # waits before it fails naming what it waited for.
    # At least 10 s: a reschedule sooner than a task's own start-up races the executor's report of
    # the previous poke, and Airflow then fails the sensor.
    settle_poke_seconds: int = Field(default=30, ge=10, le=3600)
    settle_timeout_minutes: int = Field(default=720, ge=1)

    @field_validator("ingest", "train")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _check_cron(value)


class TrainingParams(_Strict):
    max_depth: int = Field(default=6, ge=1, le=16)
    learning_rate: float = Field(default=0.1, gt=0, le=1)
    n_estimators: int = Field(default=300, ge=1, le=10000)
    early_stopping_rounds: int = Field(default=20, ge=1)
    min_child_weight: float = Field(default=1.0, ge=0)
    subsample: float = Field(default=0.9, gt=0, le=1)
    colsample_bytree: float = Field(default=0.9, gt=0, le=1)
    reg_lambda: float = Field(default=1.0, ge=0)
    max_bin: int = Field(default=256, ge=2)


class Training(_Strict):
    window_days: int = Field(default=28, ge=1)
    validation_days: int = Field(default=3, ge=1)
    holdout_days: int = Field(default=3, ge=1)
    min_partitions: int = Field(default=7, ge=1)
    min_rows: int = Field(default=5000, ge=1)
    threshold: float = Field(default=0.5, gt=0, lt=1)
    slice_column: str | None = None
    n_trials: int = Field(default=3, ge=1, le=32)
    device: Device = "auto"
    # Celery queue of the trial tasks (e.g. "gpu" for the GPU worker of docker-compose.yaml);
    # None keeps them on the executor's default queue.
    queue: str | None = Field(default=None, min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 42
    params: TrainingParams = TrainingParams()
    wait_timeout_minutes: int = Field(default=120, ge=0)

    @model_validator(mode="after")
    def _split_fits(self) -> Training:
        if self.validation_days + self.holdout_days >= self.window_days:
            raise ValueError("window_days must exceed validation_days + holdout_days")
        return self


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | int | float) -> dt.timedelta:
    """``90s``, ``15m``, ``24h``, ``2d`` (or a number of seconds) as a timedelta."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    else:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 15m, 24h, 2d)")
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return dt.timedelta(seconds=seconds)


class Approval(_Strict):
    """A person approves a promotion (and, with ``rollback``, a rollback) before ``champion`` moves."""

    enabled: bool = False
    timeout: str = Field(default="24h", description="how long a request waits: 90s, 15m, 24h, 2d")
    on_timeout: Literal["reject", "approve"] = "reject"
    rollback: bool = False

    @field_validator("timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def timeout_delta(self) -> dt.timedelta:
        return parse_duration(self.timeout)


class Promotion(_Strict):
    primary_metric: Literal["auc", "log_loss"] = "auc"
    min_improvement: float = Field(default=0.002, ge=0)
    floor: float = Field(default=0.6, description="absolute floor the first champion must clear")
    max_slice_regression: float = Field(default=0.02, ge=0)
    allow_backfill_promotion: bool = False
    approval: Approval = Approval()


NotificationEvent = Literal[
    "rejected_day", "drift_fired", "champion_changed", "approval_requested", "task_failed"
]
ALL_EVENTS: tuple[str, ...] = NotificationEvent.__args__  # type: ignore[attr-defined]


class _Channel(_Strict):
    events: list[NotificationEvent] = Field(min_length=1, description="the events sent to this channel")


class EmailChannel(_Channel):
    conn_id: str = Field(default="smtp_default", description="an Airflow smtp connection")
    to: list[str] = Field(min_length=1)
    from_email: str | None = None


class SlackChannel(_Channel):
    conn_id: str = Field(default="slack_webhook_default", description="an Airflow slackwebhook connection")


class WebhookChannel(_Channel):
    url: str = Field(pattern=r"^https?://", description="receives each message as a JSON POST")
    timeout_seconds: float = Field(default=10, gt=0, le=120)


class Notifications(_Strict):
    email: EmailChannel | None = None
    slack: SlackChannel | None = None
    webhook: WebhookChannel | None = None

    def channels_for(self, event: str) -> list[str]:
        """The channels (``email``, ``slack``, ``webhook``) that send ``event``."""
        chosen = {"email": self.email, "slack": self.slack, "webhook": self.webhook}
        return [name for name, channel in chosen.items() if channel is not None and event in channel.events]


class Persistence(_Strict):
    window: int = Field(default=3, ge=1)
    required: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _fits(self) -> Persistence:
        if self.required > self.window:
            raise ValueError("required must not exceed window")
        return self


class Drift(_Strict):
    psi_threshold: float = Field(default=0.2, gt=0)
    prediction_psi_threshold: float = Field(default=0.1, gt=0)
    auc_drop_threshold: float = Field(default=0.03, gt=0)
    min_rows: int = Field(default=500, ge=1)
    persistence: Persistence = Persistence()
    retrain_cooldown_days: int = Field(default=7, ge=0)
    # Drift retrains one champion may trigger. Its retrain either replaces it (the new champion's
    # own reference is the next baseline) or shows it still holds on the new data; either way
    # firing again at the same champion retrains on the same shift.
    max_triggers_per_champion: int = Field(default=1, ge=1)
    allow_backfill_trigger: bool = False


class Pipeline(_Strict):
    """One pipeline: what to read, how to check it, how to model it, when to run."""

    name: str
    description: str = ""
    owner: str = "mlops"
    start_date: dt.date
    end_date: dt.date | None = None
    source: Source
    key: str
    event_time: str
    target: str
    columns: dict[str, Column]
    features: list[str]
    validation: Validation
    schedules: Schedules = Schedules()
    training: Training = Training()
    promotion: Promotion = Promotion()
    drift: Drift = Drift()
    notifications: Notifications = Notifications()
    retries: int = Field(default=2, ge=0)
    retry_delay_minutes: float = Field(default=2, ge=0)
    # Every task fails after this long rather than hanging (a server that stopped answering); a
    # train trial gets ``trial_timeout_minutes``. Sensors wait in reschedule mode: this bounds a poke.
    task_timeout_minutes: float = Field(default=30, gt=0)
    trial_timeout_minutes: float = Field(default=120, gt=0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not PIPELINE_NAME.match(value):
            raise ValueError("must be lowercase letters, digits and '_', starting with a letter")
        return value

    @model_validator(mode="after")
    def _columns_agree(self) -> Pipeline:
        named = {"key": self.key, "event_time": self.event_time, "target": self.target}
        for field, column in named.items():
            if column not in self.columns:
                raise ValueError(f"{field} {column!r} is not one of the declared columns")
        unknown = [f for f in self.features if f not in self.columns]
        if unknown:
            raise ValueError(f"features not declared in columns: {unknown}")
        if twice := sorted({f for f in self.features if self.features.count(f) > 1}):
            raise ValueError(f"features listed more than once: {twice}")
        if untrainable := [f for f in self.features if self.columns[f].type in ("string", "timestamp")]:
            raise ValueError(
                f"features of type string or timestamp cannot be trained on: {untrainable} "
                "(declare a category with its values, or derive a number)"
            )
        if self.target in self.features or self.key in self.features:
            raise ValueError("the target and the key cannot be features")
        if self.columns[self.event_time].type != "timestamp":
            raise ValueError(f"event_time column {self.event_time!r} must have type 'timestamp'")
        slice_col = self.training.slice_column
        if slice_col is not None and (
            slice_col not in self.columns or self.columns[slice_col].type != "category"
        ):
            raise ValueError(f"training.slice_column {slice_col!r} must be a declared category column")
        for mean in self.validation.mean_between:
            if mean.column not in self.columns:
                raise ValueError(f"validation.mean_between column {mean.column!r} is not declared")
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self

    @property
    def categorical_features(self) -> list[str]:
        return [f for f in self.features if self.columns[f].type == "category"]

    @property
    def numeric_features(self) -> list[str]:
        return [f for f in self.features if self.columns[f].type in ("int", "float", "bool")]


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required key is missing"
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def parse_pipeline(data: Any, *, source: str) -> Pipeline:
    """Validate an already-parsed YAML document; ``source`` names it in errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level, got {type(data).__name__}")
    try:
        return Pipeline.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid pipeline config\n{_describe(exc)}") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last, silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_pipeline(path: Path) -> Pipeline:
    """Load one pipeline YAML file. The file's stem must equal the pipeline name."""
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    pipeline = parse_pipeline(data, source=str(path))
    if pipeline.name != path.stem:
        raise ConfigError(f"{path}: name {pipeline.name!r} must match the file name {path.stem!r}")
    return pipeline


def discover(directory: Path) -> dict[str, Pipeline | ConfigError]:
    """Load every ``*.yaml`` under ``directory``, keyed by file stem.

    A broken file yields its ``ConfigError`` instead of raising, so one bad pipeline never takes
    the others down with it.
    """
    found: dict[str, Pipeline | ConfigError] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            found[path.stem] = load_pipeline(path)
        except ConfigError as exc:
            found[path.stem] = exc
    return found
