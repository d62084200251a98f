"""The tour's lesson selection and table, on stand-in lessons (the real ones run in the slow
quick-tour test)."""

import io
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=300)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.builds(
            tour.Result,
            _TEXT,
            _TEXT,
            _TEXT,
            _TEXT,
            st.one_of(st.integers(-(10**30), 10**30), st.floats(allow_nan=True)),
            _TEXT,
        ),
        max_size=6,
    )
)
def test_every_line_of_the_table_fits_100_columns(results):
    lines = tour.format_table(results).splitlines()
    assert all(len(line) <= tour.WIDTH for line in lines)
    assert len(lines) >= 2 + len(results)  # header, rule, one line per row (+ its note)


def test_table_keeps_short_cells_whole_and_wraps_notes_below_their_row():
    note = "a long note " * 20
    table = tour.format_table([tour.Result("GANs", "gan", "ring8", "modes", 8, note)])
    _, _, row, *notes = table.splitlines()
    assert row.split() == ["GANs", "gan", "ring8", "modes", "8"]
    assert len(notes) > 1 and all(line.startswith("    a long") for line in notes)


def test_files_of_every_lesson_are_listed_in_their_lesson_folder(monkeypatch, tmp_path, capsys):
    def writes(ctx):
        (ctx.output_dir / "figure.png").write_bytes(b"png")
        (ctx.output_dir / "checkpoint" / "1").mkdir(parents=True)
        for name in ("a", "b"):
            (ctx.output_dir / "checkpoint" / "1" / name).write_text(name)
        return []

    monkeypatch.setattr(tour, "_LESSONS", [("Day 1", "w", writes)])
    summary = tour.run_tour(output_dir=tmp_path)
    assert summary["files"] == [
        "writes/checkpoint/1/a",
        "writes/checkpoint/1/b",
        "writes/figure.png",
    ]
    out = capsys.readouterr().out
    assert "  writes/checkpoint/ (2 files)\n  writes/figure.png" in out


def test_progress_prints_a_line_per_epoch_off_a_terminal_with_the_time_left():
    stream = io.StringIO()
    progress = tour.Progress(4, stream)
    progress.start_lesson(0, "Day 1: a")
    hook = progress.callback()
    hook.on_epoch_end(types.SimpleNamespace(epoch=1, epochs=3))
    progress.end_lesson()
    progress.start_lesson(1, "Day 1: b")
    hook.on_epoch_end(types.SimpleNamespace(epoch=2, epochs=5))
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[1/4] Day 1: a | 0 s")
    assert lines[1].startswith("[1/4] Day 1: a | epoch 1/3 | ")
    assert lines[2].startswith("[1/4] Day 1: a | done | ") and "left" in lines[2]
    assert lines[4].startswith("[2/4] Day 1: b | epoch 2/5 | ") and lines[4].endswith("left")
    assert "\r" not in stream.getvalue()


def test_a_long_title_is_shortened_but_the_epoch_and_times_stay():
    progress = tour.Progress(20, io.StringIO())
    progress.start_lesson(9, "Day 1: diagnostics " + "word " * 40)
    line = progress.line("epoch 12/60")
    assert len(line) <= tour.WIDTH and line.startswith("[10/20] Day 1: diagnostics word")
    assert " | epoch 12/60 | 0 s" in line


def test_each_training_run_gets_a_curve_png(tmp_path):
    writer = tour._curve_writer(tmp_path)
    history = [{"epoch": e, "train": {"loss": 1.0 / e}, "eval": {"loss": 2.0 / e}} for e in (1, 2)]
    for _ in range(2):
        writer.on_train_end(types.SimpleNamespace(history=history))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "training_curve-2.png",
        "training_curve.png",
    ]
