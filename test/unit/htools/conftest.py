"""Fixtures of the htools tests: Ganeti's hbal as the reference (required, never skipped)."""
from __future__ import annotations

import pytest

import htools_testlib


@pytest.fixture(scope="session")
def real_hbal():
    return htools_testlib.require_real_hbal()


@pytest.fixture(scope="session")
def genet_hbal():
    assert htools_testlib.GENET_HBAL.exists(), f"genet's hbal is not installed at {htools_testlib.GENET_HBAL}"
    return htools_testlib.GENET_HBAL


@pytest.fixture(scope="session")
def real_hroller():
    return htools_testlib.require_real("hroller")
