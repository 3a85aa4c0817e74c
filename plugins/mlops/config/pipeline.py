"""Pipeline configuration: one YAML file per pipeline, loaded into typed models.

A user adds a dataset by adding ``include/pipelines/<name>.yaml`` (and its generated suite).
Every error names the file and the key, so a broken file can be fixed without reading code.
Pure Python: no Airflow import, usable from a notebook.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from mlops.grain import SPAN, Grain, grain_of, nearest_partitions, partitions

PIPELINE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
ColumnType = Literal["int", "float", "category", "bool", "timestamp", "string"]
Device = Literal["auto", "cpu", "cuda"]
# The bucket an open category's unseen values are counted in (see ``Column.open``).
OTHER = "__other__"
log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A pipeline YAML file that cannot be used; the message names the file and the key."""


def _span_syntax(value: int | str) -> int | str:
    if isinstance(value, int) and value < 0:
        raise ValueError("must not be negative")
    if isinstance(value, str) and not SPAN.match(value):
        raise ValueError(
            f"{value!r} is neither a number of partitions nor a duration (e.g. 12, '12 partitions', "
            "'12h', '28d', '2w')"
        )
    return value


# A window or distance: partitions of the pipeline's grain (an int or "N partitions"), or a duration
# ("12h", "28d", "2w") that must be a whole number of them.
Span = Annotated[int | str, AfterValidator(_span_syntax)]


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
    open: bool = Field(
        default=False,
        description=f"category columns: values outside 'values' become {OTHER!r} instead of being quarantined",
    )
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
        if self.open and self.type != "category":
            raise ValueError("'open' only applies to columns of type 'category'")
        if self.values is not None and OTHER in self.values:
            raise ValueError(f"{OTHER!r} is reserved for the unseen values of an open category")
        return self

    @property
    def categories(self) -> list[str]:
        """The categories a model and a drift profile know: the values, then ``__other__`` if open."""
        return [*(self.values or []), *([OTHER] if self.open else [])]


class Source(_Strict):
    uri: str = Field(description="relative to the landing root, or an absolute path or s3:// URI")
    format: Literal["csv", "parquet"] = "csv"
    null_values: list[str] = Field(
        default=[""],
        description='CSV strings read as null; the default, only the empty field ("NA" or "null" stay text)',
    )
    wait_timeout_minutes: int = Field(default=60, ge=0)
    poke_interval_seconds: int = Field(default=60, ge=5)
    ready: Literal["stable", "marker"] = Field(
        default="stable",
        description="when a partition's files are complete: 'stable' (sizes and modification times "
        "unchanged between two looks, or untouched for settle_seconds), or 'marker' (ready_marker exists)",
    )
    ready_marker: str = Field(
        default="_SUCCESS",
        pattern=r"^[^/\\]+$",
        description="with ready: marker, the file the producer writes into the partition's folder last",
    )
    settle_seconds: int = Field(
        default=60, ge=0, description="with ready: stable, files untouched this long count as complete"
    )

    @model_validator(mode="after")
    def _marker_only_with_marker_rule(self) -> Source:
        if "ready_marker" in self.model_fields_set and self.ready != "marker":
            raise ValueError("ready_marker is read only with ready: marker; set both, or neither")
        if self.ready_marker in (".", ".."):
            raise ValueError("ready_marker must name a file in the partition's folder")
        return self


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

    @field_validator("ingest")
    @classmethod
    def _one_partition_per_run(cls, value: str) -> str:
        grain_of(value)  # one ingest run fills one partition: its period is the partition grain
        return value


class TrainingParams(_Strict):
    max_depth: int = Field(default=6, ge=1, le=16)
    learning_rate: float = Field(default=0.1, gt=0, le=1)
    n_estimators: int = Field(default=300, ge=1, le=10000)
    early_stopping_rounds: int = Field(default=20, ge=1, le=1000)
    min_child_weight: float = Field(default=1.0, ge=0)
    subsample: float = Field(default=0.9, gt=0, le=1)
    colsample_bytree: float = Field(default=0.9, gt=0, le=1)
    reg_lambda: float = Field(default=1.0, ge=0)
    max_bin: int = Field(default=256, ge=2)


class Training(_Strict):
    # Counted in partitions of the grain, or durations (see ``Span``); resolved by ``Pipeline.windows``.
    window: Span | None = None  # default 28 partitions
    validation: Span | None = None  # default 3: the partitions before the holdout, for early stopping
    holdout: Span | None = None  # default 3: the newest partitions, for the promotion gate
    min_partitions: Span = 7
    # Deprecated: window_days counts calendar days, the other two partitions.
    window_days: int | None = Field(default=None, ge=1)
    validation_days: int | None = Field(default=None, ge=1)
    holdout_days: int | None = Field(default=None, ge=1)
    min_rows: int = Field(default=5000, ge=1)
    threshold: float = Field(default=0.5, gt=0, lt=1)
    slice_column: str | None = None
    n_trials: int = Field(default=3, ge=1, le=32)
    device: Device = "auto"
    # Where trials train: this worker ("local", XGBoost's iterator over the partitions' files) or a
    # Dask cluster ("dask", XGBoost's Dask interface; the scheduler is the `dask_conn_id` connection).
    engine: Literal["local", "dask"] = "local"
    dask_conn_id: str = Field(default="dask_default", min_length=1)
    # Above this many bytes of quantized matrix, the local engine trains from external memory
    # (ExtMemQuantileDMatrix, pages cached under the task's temporary directory).
    memory_budget_mb: int = Field(default=8192, ge=64)
    # "balanced" weighs the positive class by negatives / positives of the training split
    # (XGBoost's scale_pos_weight); None trains every row at weight 1.
    class_weight: Literal["balanced"] | None = None
    # Celery queue of the trial tasks (e.g. "gpu" for the GPU worker of docker-compose.yaml);
    # None keeps them on the executor's default queue.
    queue: str | None = Field(default=None, min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 42
    params: TrainingParams = TrainingParams()
    wait_timeout_minutes: int = Field(default=120, ge=0)


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


class Approver(_Strict):
    """A user who may approve: ``id`` as Airflow's auth manager knows the user (the username with
    the simple auth manager, the numeric user id with FAB); ``name`` is what the page shows."""

    id: str = Field(min_length=1)
    name: str = ""

    @field_validator("id", mode="before")
    @classmethod
    def _numeric(cls, value: Any) -> Any:
        # FAB's user ids are numbers; YAML reads ``id: 7`` as one.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Approval(_Strict):
    """A person approves a promotion (and, with ``rollback``, a rollback) before ``champion`` moves."""

    enabled: bool = False
    timeout: str = Field(default="24h", description="how long a request waits: 90s, 15m, 24h, 2d")
    on_timeout: Literal["reject", "approve"] = "reject"
    rollback: bool = False
    assigned_users: list[Approver] = Field(
        default_factory=list,
        description="who may answer (a user id, or {id, name}); empty: anyone who may edit the DAG",
    )

    @field_validator("timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("assigned_users", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        # A bare user id is the common case: ``assigned_users: [alice, bob]``.
        if isinstance(value, list):
            return [{"id": user} if isinstance(user, str | int) else user for user in value]
        return value

    @property
    def approver_ids(self) -> tuple[str, ...]:
        return tuple(user.id for user in self.assigned_users)

    @property
    def assignees(self) -> list[dict[str, str]]:
        """``assigned_users`` as Airflow's approval request takes them (``HITLUser``: id and name)."""
        return [{"id": user.id, "name": user.name or user.id} for user in self.assigned_users]

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
    "rejected_day",
    "rows_quarantined",
    "drift_fired",
    "champion_changed",
    "approval_requested",
    "task_failed",
    "service_down",  # the probe DAG found the serving service down (or answering wrong)
    "slo_breached",  # the probes' p95 latency over serving.slo.window_minutes exceeds serving.slo.p95_ms
    "performance_decay",  # online AUC (served rows joined with later labels) dropped below the reference
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
    quarantine_share: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="rows_quarantined is sent when a passing partition quarantines more than this share",
    )

    def channels_for(self, event: str) -> list[str]:
        """The channels (``email``, ``slack``, ``webhook``) that send ``event``."""
        chosen = {"email": self.email, "slack": self.slack, "webhook": self.webhook}
        return [name for name, channel in chosen.items() if channel is not None and event in channel.events]


class Persistence(_Strict):
    window: Span = 3  # partitions (or a duration) whose verdicts confirm a drift
    required: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _fits(self) -> Persistence:
        if isinstance(self.window, int) and self.required > self.window:
            raise ValueError("required must not exceed window")
        return self


DriftReference = Literal["holdout", "training_window", "same_period_last_cycle"]


class Drift(_Strict):
    psi_threshold: float = Field(default=0.2, gt=0)
    prediction_psi_threshold: float = Field(default=0.1, gt=0)
    auc_drop_threshold: float = Field(default=0.03, gt=0)
    # A numeric feature also drifts when KS >= ks_threshold with p-value <= ks_alpha (off when None).
    ks_threshold: float | None = Field(default=None, gt=0, le=1)
    ks_alpha: float = Field(default=1e-3, gt=0, le=1)
    # PSI has a positive bias on finite samples, about (bins - 1) * (1/n + 1/m) with no shift at
    # all; the verdict compares the PSI less that bias. Below min_expected_per_bin rows per bin on
    # the smaller side, a feature's PSI is noise: it gets no vote, and the report says so.
    psi_bias_correction: bool = True
    min_expected_per_bin: float = Field(default=5.0, ge=0)
    min_rows: int = Field(default=500, ge=1)
    # What a partition is compared with: the champion's holdout (the newest of its window), its
    # whole training window, or the same partition one ``cycle`` earlier (seasonal data).
    reference: DriftReference = "holdout"
    # Partitions of the grain or a duration, like every window; a duration that is no whole number
    # of partitions is rounded to the nearest ('365d' is 52 weeks, or 12 months).
    cycle: Span | None = None
    persistence: Persistence = Persistence()
    retrain_cooldown: Span | None = None  # default 7 partitions between two drift retrains
    retrain_cooldown_days: int | None = Field(default=None, ge=0)  # deprecated: calendar days
    # Drift retrains one champion may trigger. Its retrain either replaces it (the new champion's
    # own reference is the next baseline) or shows it still holds on the new data; either way
    # firing again at the same champion retrains on the same shift.
    max_triggers_per_champion: int = Field(default=1, ge=1)
    allow_backfill_trigger: bool = False

    @model_validator(mode="after")
    def _cycle_given(self) -> Drift:
        if self.reference == "same_period_last_cycle" and self.cycle is None:
            raise ValueError(
                "reference same_period_last_cycle needs a cycle (e.g. cycle: 365d, or cycle: 12 for months)"
            )
        return self


class ServingSlo(_Strict):
    """What the probe DAG holds the serving service to, over a window of probes."""

    p95_ms: float = Field(default=250, gt=0)
    availability: float = Field(default=0.99, gt=0, le=1)
    window_minutes: int = Field(default=30, ge=1)


class Serving(_Strict):
    """The serving service (``mlops.serving``, ``python -m mlops serve``) and its probe."""

    # Share of answered rows kept in the lake's ``served`` zone (0 keeps none, 1 every row).
    sample_rate: float = Field(default=1.0, ge=0, le=1)
    # The served rows are committed every ``flush_rows`` rows or every ``flush_seconds``, whichever first.
    flush_rows: int = Field(default=1000, ge=1, le=1_000_000)
    flush_seconds: float = Field(default=10, gt=0, le=3600)
    # How often the service asks the registry for a new champion: a promotion or a rollback reaches
    # online traffic within about this long (plus the new version's load).
    poll_seconds: float = Field(default=5, gt=0, le=3600)
    # Where the probe DAG reaches the service; None: the ``serving_default`` connection.
    url: str | None = Field(default=None, pattern=r"^https?://")
    slo: ServingSlo = ServingSlo()
    probe_schedule: str = "*/5 * * * *"

    @field_validator("probe_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _check_cron(value)


FIX_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
# What a replay may be asked for besides a named fix: the steward's submitted file, or no change at
# all (re-validate against the current suite, e.g. after a category level was accepted).
SUBMITTED_FIX, NO_FIX = "submitted", "none"


def _raw_text(value: Any) -> Any:
    # Raw values are text: YAML reads `1`, `1.5` or `true` as numbers and booleans.
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, int | float) else value


class FixStep(_Strict):
    """One change a declarative fix makes to the quarantined rows of one column, at replay.

    Exactly one of ``map`` (raw value -> new raw value, or null), ``default`` (the value of a null)
    and ``scale`` (a unit conversion: numbers multiplied by this factor). A step touches only the
    rows whose quarantine reasons name its column.
    """

    column: str
    map: dict[str, str | None] | None = None
    default: str | None = None
    scale: float | None = None

    @field_validator("map", mode="before")
    @classmethod
    def _map_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {_raw_text(k): None if v is None else _raw_text(v) for k, v in value.items()}
        return value

    @field_validator("default", mode="before")
    @classmethod
    def _default_text(cls, value: Any) -> Any:
        return _raw_text(value)

    @field_validator("scale")
    @classmethod
    def _factor(cls, value: float | None) -> float | None:
        if value is not None and (value == 0 or value != value or abs(value) == float("inf")):
            raise ValueError("scale must be a finite, non-zero factor")
        return value

    @model_validator(mode="after")
    def _one_action(self) -> FixStep:
        given = [k for k in ("map", "default", "scale") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of map, default or scale, not {given or 'none'}")
        if self.map is not None and not self.map:
            raise ValueError("map needs at least one value to replace")
        return self

    @property
    def action(self) -> str:
        return next(k for k in ("map", "default", "scale") if getattr(self, k) is not None)


def _check_fixes(pipeline: Pipeline) -> None:
    """Every fix names declared columns, never the key (a fix must not change which row a row is),
    and scales only numbers."""
    for name, steps in pipeline.fixes.items():
        if not FIX_NAME.match(name) or name in (SUBMITTED_FIX, NO_FIX):
            raise ValueError(
                f"fixes: {name!r} is not a fix name (lowercase letters, digits and '_'; "
                f"{SUBMITTED_FIX!r} and {NO_FIX!r} are reserved)"
            )
        if not steps:
            raise ValueError(f"fixes.{name}: a fix needs at least one step")
        for i, step in enumerate(steps):
            where = f"fixes.{name}[{i}]"
            if step.column not in pipeline.columns:
                raise ValueError(f"{where}: column {step.column!r} is not declared")
            if step.column == pipeline.key:
                raise ValueError(
                    f"{where}: a fix may not change the key column {pipeline.key!r} (a replayed row "
                    "must stay the row it was); fix the source and re-run the ingest instead"
                )
            kind = pipeline.columns[step.column].type
            if step.scale is not None and kind not in ("int", "float"):
                raise ValueError(f"{where}: scale applies to int and float columns, not {kind!r}")


@dataclass(frozen=True)
class Windows:
    """Every window and distance of a pipeline, in partitions of its grain."""

    window: int
    validation: int
    holdout: int
    min_partitions: int
    persistence: int
    retrain_cooldown: int
    cycle: int | None = None  # drift.cycle: how far back the same period lies


# Deprecated key -> (its replacement, its unit: "d" for calendar days, "" for partitions).
DEPRECATED = {
    "training.window_days": ("training.window", "d"),
    "training.validation_days": ("training.validation", ""),
    "training.holdout_days": ("training.holdout", ""),
    "drift.retrain_cooldown_days": ("drift.retrain_cooldown", "d"),
}


def _resolve(pipeline: str, section: BaseModel, prefix: str, new: str, default: int, grain: Grain) -> int:
    """The new key's value in partitions, or its deprecated key's with a warning, or ``default``."""
    old = next((o for o, (n, _) in DEPRECATED.items() if n == f"{prefix}.{new}"), None)
    value = getattr(section, new)
    old_value = getattr(section, old.split(".")[1]) if old else None
    if old and old_value is not None:
        if value is not None:
            raise ValueError(f"give {prefix}.{new} or its deprecated {old}, not both")
        warnings.warn(
            f"pipeline {pipeline}: {old} is deprecated, use {prefix}.{new} (partitions of the grain, "
            "or a duration such as '28d')",
            FutureWarning,
            stacklevel=2,
        )
        unit = DEPRECATED[old][1]
        return partitions(f"{old_value}{unit}" if unit else old_value, grain, old)
    return default if value is None else partitions(value, grain, f"{prefix}.{new}")


class Pipeline(_Strict):
    """One pipeline: what to read, how to check it, how to model it, when to run."""

    _windows: Windows | None = PrivateAttr(default=None)

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
    serving: Serving = Serving()
    retries: int = Field(default=2, ge=0)
    retry_delay_minutes: float = Field(default=2, ge=0)
    # Every task fails after this long rather than hanging (a server that stopped answering); a
    # train trial gets ``trial_timeout_minutes``. Sensors wait in reschedule mode: this bounds a poke.
    task_timeout_minutes: float = Field(default=30, gt=0)
    trial_timeout_minutes: float = Field(default=120, gt=0)
    # Rows a stage holds at once (ingest, monitor, score, the training iterator): peak memory follows
    # this, never the size of a partition. A partition of fewer rows is one batch.
    batch_rows: int = Field(default=250_000, ge=1, le=50_000_000)
    # Declarative fixes of quarantined rows, applied by a replay (``mlops.quarantine``): name -> steps.
    fixes: dict[str, list[FixStep]] = Field(default_factory=dict)

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
        _check_fixes(self)
        return self

    @model_validator(mode="after")
    def _resolve_windows(self) -> Pipeline:
        grain, t, d = self.grain, self.training, self.drift
        windows = Windows(
            window=_resolve(self.name, t, "training", "window", 28, grain),
            validation=_resolve(self.name, t, "training", "validation", 3, grain),
            holdout=_resolve(self.name, t, "training", "holdout", 3, grain),
            min_partitions=partitions(t.min_partitions, grain, "training.min_partitions"),
            persistence=partitions(d.persistence.window, grain, "drift.persistence.window"),
            retrain_cooldown=_resolve(self.name, d, "drift", "retrain_cooldown", 7, grain),
            cycle=None if d.cycle is None else nearest_partitions(d.cycle, grain, "drift.cycle"),
        )
        if windows.cycle is not None and windows.cycle < 1:
            raise ValueError(f"drift.cycle must be at least one {grain.name} partition")
        for key in ("window", "validation", "holdout", "min_partitions"):
            if getattr(windows, key) < 1:
                raise ValueError(f"training.{key} must be at least one {grain.name} partition")
        if windows.window > (year := grain.per_year):
            # The train form's limit too (dags/train.py): a config that passes always builds its DAGs.
            raise ValueError(
                f"training.window: at most a year of partitions ({year} {grain.name} partitions), "
                f"got {windows.window}"
            )
        if windows.persistence < 1:
            raise ValueError(f"drift.persistence.window must be at least one {grain.name} partition")
        if windows.validation + windows.holdout >= windows.window:
            raise ValueError(
                f"training.window ({windows.window} {grain.name} partitions) must exceed training.validation "
                f"+ training.holdout ({windows.validation} + {windows.holdout})"
            )
        if d.persistence.required > windows.persistence:
            raise ValueError(
                f"drift.persistence: required ({d.persistence.required}) must not exceed window "
                f"({windows.persistence} {grain.name} partitions)"
            )
        self._windows = windows
        return self

    @property
    def grain(self) -> Grain:
        """The partition grain: the period of the ingest schedule."""
        return grain_of(self.schedules.ingest)

    @property
    def windows(self) -> Windows:
        """Windows and distances in partitions of the grain (deprecated keys applied)."""
        assert self._windows is not None  # set by validation
        return self._windows

    @property
    def categorical_features(self) -> list[str]:
        return [f for f in self.features if self.columns[f].type == "category"]

    @property
    def numeric_features(self) -> list[str]:
        return [f for f in self.features if self.columns[f].type in ("int", "float", "bool")]


def bounds(model: type[BaseModel], field: str) -> dict[str, float]:
    """A field's numeric bounds as JSON-schema keywords (``minimum``, ``exclusiveMinimum``, ...).

    The one source of the limits: the train form's Params are built from these, so a value the
    config model accepts is a valid default of the form, and the config error names the limit.
    """
    import annotated_types as at

    keywords = {
        at.Ge: ("minimum", "ge"),
        at.Gt: ("exclusiveMinimum", "gt"),
        at.Le: ("maximum", "le"),
        at.Lt: ("exclusiveMaximum", "lt"),
    }
    out: dict[str, float] = {}
    for item in model.model_fields[field].metadata:
        for kind, (keyword, attribute) in keywords.items():
            if isinstance(item, kind):
                out[keyword] = getattr(item, attribute)
    return out


def pipeline_warnings(pipeline: Pipeline) -> list[str]:
    """Settings the model accepts that can never be met by partitions within ``validation.row_count``.

    Not errors: the rows a partition holds are a guess until data arrives; but each warning names
    the setting that will never be reached, so it is fixed before the first run says so.
    """
    rows_max = pipeline.validation.row_count.max
    training, drift = pipeline.training, pipeline.drift
    out = []
    if drift.min_rows > rows_max:
        out.append(
            f"drift.min_rows ({drift.min_rows}) is above validation.row_count.max ({rows_max}): "
            "no partition can have enough rows, so the monitor will never give a drift verdict"
        )
    window, grain = pipeline.windows.window, pipeline.grain.name
    if training.min_rows > window * rows_max:
        out.append(
            f"training.min_rows ({training.min_rows}) is above training.window x "
            f"validation.row_count.max ({window} {grain} partitions x {rows_max} = {window * rows_max}): "
            "the training window can never hold that many rows, so training will always refuse"
        )
    if pipeline.windows.min_partitions > window:
        out.append(
            f"training.min_partitions ({pipeline.windows.min_partitions}) is above training.window "
            f"({window} {grain} partitions): the window can never hold that many partitions"
        )
    for name in pipeline.categorical_features:
        levels = len(pipeline.columns[name].categories)
        if drift.min_expected_per_bin and rows_max / levels < drift.min_expected_per_bin:
            out.append(
                f"columns.{name}: {levels} categories at most {rows_max} rows a partition "
                f"(validation.row_count.max) give fewer than drift.min_expected_per_bin "
                f"({drift.min_expected_per_bin:g}) rows per category: its PSI will never vote on drift"
            )
    return out


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
        pipeline = Pipeline.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid pipeline config\n{_describe(exc)}") from None
    for warning in pipeline_warnings(pipeline):
        log.warning("%s: %s", source, warning)
    return pipeline


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last, silently),
    and turning what the safe loader lets escape as a ``TypeError`` or ``ValueError`` (a list as a
    key, a date such as 2026-02-30) into a YAML error that points at the line."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a single value, not a list or a mapping", key_node.start_mark
                ) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a valid date or time ({exc})", node.start_mark
            ) from None


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _UniqueKeyLoader.construct_yaml_timestamp)


def _read_yaml(path: Path) -> Any:
    """The YAML document in ``path``; every way it can fail is a ``ConfigError`` naming the file."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}): save it as UTF-8"
        ) from None
    loader = _UniqueKeyLoader(text)  # a SafeLoader subclass
    loader.name = str(path)  # YAML errors point at the file, line and column
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def load_pipeline(path: Path) -> Pipeline:
    """Load one pipeline YAML file. The file's stem must equal the pipeline name.

    Whatever is wrong with the file, the error is a ``ConfigError`` naming it: a pipeline's broken
    file must stay that pipeline's problem (``discover``), never the DAG folder's.
    """
    try:
        pipeline = parse_pipeline(_read_yaml(path), source=str(path))
    except ConfigError:
        raise
    except Exception as exc:  # a case no check above foresaw: still this file's error
        raise ConfigError(f"{path}: cannot be loaded: {type(exc).__name__}: {exc}") from exc
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
