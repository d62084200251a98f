"""The Day 1 diagnostics lesson shows what it claims, in quick mode (slow: ~40 s)."""

import pytest

from adljax.lessons.day1_diagnostics import diagnostics
from adljax.tour import LessonContext

pytestmark = pytest.mark.slow


def test_the_diagnostics_lesson_shows_vanishing_gradients_and_dead_units(tmp_path):
    rows = {
        (row.model, row.metric): row.value for row in diagnostics(LessonContext(True, tmp_path))
    }
    ratio = "|g| layer 1 / layer 10"
    # Sigmoid's slope is at most 1/4: ten layers shrink the first layer's gradient ~1e5-fold.
    assert rows[("mlp x10 (sigmoid)", ratio)] < 1e-3
    assert rows[("mlp x10 (tanh)", ratio)] > 0.1
    assert (
        rows[("mlp x10 (relu)", "dead fraction")]
        > rows[("mlp x10 (relu + batch norm)", "dead fraction")]
    )
    assert (
        rows[("mlp x10 (tanh)", "eval accuracy")]
        > rows[("mlp x10 (sigmoid)", "eval accuracy")] + 0.3
    )
    assert (tmp_path / "gradient_norms_at_init.png").stat().st_size > 10_000
    assert (tmp_path / "dropout_gap.png").stat().st_size > 10_000
