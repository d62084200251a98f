"""The tour's lesson selection and table, on stand-in lessons (the real ones run in the slow
quick-tour test)."""

import pytest

import adljax.lessons  # noqa: F401  (registers the real lessons before the stand-ins replace them)
from adljax import tour
from adljax.cli import main


@pytest.fixture
def stand_in_lessons(monkeypatch):
    """Three trivial lessons over days 1 and 3, recording which ran."""
    ran = []

    def make(name, value):
        def fn(ctx):
            ran.append(name)
            assert ctx.output_dir.is_dir()
            return [tour.Result(name, "model", "data", "metric", value)]

        fn.__name__ = name
        return fn

    lessons = [("Day 1", "a", make("a", 1.0)), ("Day 3", "b", make("b", 2.0))]
    lessons.append(("Day 3", "c", make("c", 3.0)))
    monkeypatch.setattr(tour, "_LESSONS", lessons)
    return ran


def test_days_select_lessons_in_registration_order(stand_in_lessons, tmp_path, capsys):
    summary = tour.run_tour(quick=True, output_dir=tmp_path, days=[3])
    assert stand_in_lessons == ["b", "c"]
    assert [row["value"] for row in summary["results"]] == [2.0, 3.0]
    table = capsys.readouterr().out
    assert "lesson" in table.splitlines()[0] and "3.0000" in table


def test_table_cells_show_counts_as_integers_and_tiny_values_in_scientific_notation():
    assert [tour.format_value(v) for v in (8, 8.0, 3.2e-7, 0.94151, 0.0)] == [
        "8",
        "8.0000",
        "3.20e-07",
        "0.9415",
        "0.0000",
    ]


def test_all_days_run_by_default(stand_in_lessons, tmp_path):
    tour.run_tour(quick=True, output_dir=tmp_path)
    assert stand_in_lessons == ["a", "b", "c"]


@pytest.mark.parametrize("days", [[2], [1, 5], []])
def test_a_day_without_lessons_is_refused_before_anything_runs(stand_in_lessons, tmp_path, days):
    with pytest.raises(ValueError, match=r"`days` must be among \[1, 3\]"):
        tour.run_tour(quick=True, output_dir=tmp_path, days=days)
    assert stand_in_lessons == []


def test_the_command_line_reports_an_unknown_day(stand_in_lessons, tmp_path, capsys):
    assert main(["tour", "--day", "7", "--output-dir", str(tmp_path)]) == 2
    assert "`days` must be among [1, 3], got [7]" in capsys.readouterr().err
