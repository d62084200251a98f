"""Exports of every family's small model, made once per test session."""

import pytest
from serving_models import build_state

import adljax


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """``exported(family) -> (state, data, artifact path)``, exported once per session."""
    cache = {}

    def get(family: str):
        if family not in cache:
            state, data = build_state(family)
            path = tmp_path_factory.mktemp(family) / "export"
            adljax.serving.export(state, path, info=data.info, platforms=("cpu",))
            cache[family] = (state, data, path)
        return cache[family]

    return get
