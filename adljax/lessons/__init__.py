"""The tour's lessons, one module per course day (and topic); importing registers them in order.

The imports are in course order, not alphabetical: the tour runs lessons as registered.
"""

# ruff: noqa: I001
from adljax.lessons import day1_intro as day1_intro
from adljax.lessons import day1 as day1
from adljax.lessons import day1_backprop as day1_backprop
from adljax.lessons import day1_diagnostics as day1_diagnostics
from adljax.lessons import day2 as day2
from adljax.lessons import day2_detection as day2_detection
from adljax.lessons import day3 as day3
from adljax.lessons import day4 as day4
