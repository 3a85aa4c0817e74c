"""Two promotions and a rollback racing, in processes of their own, against a real MLflow server.

Each round, three writers that all read the same champion try to move it at once: a scheduled
promotion, a drift retrain's promotion and a rollback. Exactly one wins; the others are told why
(``ChampionChanged``, or ``Superseded`` when the winner's decision comes later in the logical
order), and the audit trail reads as one unbroken chain of moves.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
from typing import Any

import pytest

from mlops.airflow.hooks.signing import signing_key
from mlops.registry.champion import CHAMPION, Move, alias_version, history, move_champion

MODEL = "race"
ROUNDS = 3


def _race(uri: str, move: dict[str, Any], expected: str, start: Any, results: Any) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    start.wait(timeout=60)
    try:
        move_champion(client, Move(**move), expected=expected, key=signing_key(), wait_s=60)
        results.put((move["version"], "won", ""))
    except Exception as exc:
        results.put((move["version"], type(exc).__name__, str(exc)))


def new_version(client: Any, experiment: str) -> str:
    run = client.create_run(experiment)
    client.log_text(run.info.run_id, "a model", "model/MLmodel")
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(MODEL, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    client.set_model_version_tag(MODEL, version.version, "gate.cleared_floor", "true")
    return version.version


@pytest.fixture(scope="module")
def client(mlflow_server: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)


def test_two_promotions_and_a_rollback_racing_leave_one_champion_and_an_unbroken_trail(
    client, mlflow_server: str
) -> None:
    client.create_registered_model(MODEL)
    experiment = client.create_experiment("race")
    first = new_version(client, experiment)
    move_champion(
        client,
        Move(MODEL, first, None, "first", "seed", {}, effective_day="2026-01-01"),
        expected=None,
        key=signing_key(),
    )
    ctx = mp.get_context("spawn")
    for n in range(1, ROUNDS + 1):
        holding = alias_version(client, MODEL, CHAMPION)
        day = f"2026-01-{n + 1:02d}"
        moves = [
            # A scheduled train, a drift retrain and a rollback to a known-good version, one day.
            Move(MODEL, new_version(client, experiment), None, "schedule", f"train-{n}", {}, day, 0),
            Move(MODEL, new_version(client, experiment), None, "drift", f"drift-{n}", {}, day, 1),
            Move(MODEL, new_version(client, experiment), None, "rollback", f"rb-{n}", {}, day, 2, "rollback"),
        ]
        start, results = ctx.Barrier(len(moves)), ctx.Queue()
        racers = [
            ctx.Process(target=_race, args=(mlflow_server, vars(m), holding, start, results)) for m in moves
        ]
        for racer in racers:
            racer.start()
        outcomes = [results.get(timeout=180) for _ in racers]
        for racer in racers:
            racer.join(timeout=30)
        won = [version for version, outcome, _ in outcomes if outcome == "won"]
        assert len(won) == 1, f"round {n}: {outcomes}"
        lost = [(outcome, why) for _, outcome, why in outcomes if outcome != "won"]
        assert all(outcome in ("ChampionChanged", "Superseded") for outcome, _ in lost), lost
        assert alias_version(client, MODEL, CHAMPION) == won[0]

    trail = history(client, MODEL, signing_key())
    assert len(trail) == ROUNDS + 1, trail
    for before, after in itertools.pairwise(trail):
        assert after.previous == before.version, f"a gap in the audit trail: {before} -> {after}"
    assert trail[-1].version == alias_version(client, MODEL, CHAMPION)
    for move in trail[1:]:
        demoted = client.get_model_version(MODEL, move.previous).tags
        assert demoted["demoted.by_version"] == move.version
