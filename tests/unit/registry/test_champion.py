"""The champion's history read back as typed records from the signed ``<kind>.*`` tags ``Move`` writes."""

from __future__ import annotations

from types import SimpleNamespace

from mlops.registry.champion import Move, RecordedMove, champion_on, history, superseding, was_champion
from mlops.registry.signing import SigningKey

KEY = SigningKey.from_text("unit-test-signing-key", source="test")


class Page(list):
    token = None


class Versions:
    """The one registry call ``history`` makes, over versions and their tags held in memory."""

    def __init__(self, *moves: Move) -> None:
        self.versions: dict[str, SimpleNamespace] = {}
        for move in moves:
            found = self.versions.setdefault(move.version, SimpleNamespace(version=move.version, tags={}))
            found.tags.update(move.tags(KEY))

    def search_model_versions(self, filter_string: str, page_token: str | None = None) -> Page:
        return Page(self.versions.values())


def move(version: str, previous: str | None, day: str, order: int = 0, kind: str = "promotion") -> Move:
    return Move("churn", version, previous, f"why {version}", f"run-{version}", {}, day, order, kind)


def test_history_reads_each_signed_move_back_typed_in_the_logical_order() -> None:
    client = Versions(
        move("2", "1", "2026-01-19", order=1),
        move("1", None, "2026-01-12"),
        move("1", "2", "2026-01-20", order=2, kind="rollback"),
    )

    moves = history(client, "churn", KEY)

    assert [(m.version, m.kind, m.previous, m.key) for m in moves] == [
        ("1", "promotion", None, ("2026-01-12", 0)),
        ("2", "promotion", "1", ("2026-01-19", 1)),
        ("1", "rollback", "2", ("2026-01-20", 2)),
    ]
    tags = client.versions["1"].tags
    assert moves[2] == RecordedMove(
        version="1",
        effective_day="2026-01-20",
        order=2,
        kind="rollback",
        previous="2",
        at=tags["rollback.at"],
        reason="why 1",
        airflow_run_id="run-1",
    )
    assert tags["promotion.previous_champion"] == "none" and tags["rollback.order"] == "2"
    assert [champion_on(moves, ds) for ds in ("2026-01-11", "2026-01-19", "2026-01-20")] == [None, "2", "1"]
    assert superseding(moves, move("3", "2", "2026-01-19")) == moves[2]
    assert was_champion(moves, "2") and not was_champion(moves, "3")


def test_a_record_whose_signature_does_not_verify_is_left_out() -> None:
    client = Versions(move("1", None, "2026-01-12"), move("2", "1", "2026-01-19"))
    client.versions["2"].tags["promotion.effective_day"] = "2026-01-13"  # edited by hand

    assert [m.version for m in history(client, "churn", KEY)] == ["1"]
