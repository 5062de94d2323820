"""Fixtures of the store contract suite: `reader` and `store`, once per backend of backends.py."""

from __future__ import annotations

import pytest

from backends import READERS, STORES, make_data
from qa.store.base import IndexData


@pytest.fixture
def data() -> IndexData:
    return make_data()


@pytest.fixture(params=sorted(READERS))
def reader(request, tmp_path, data, monkeypatch):
    """An open `IndexReader` of each backend over `data`."""
    return READERS[request.param](tmp_path, data, monkeypatch)


@pytest.fixture(params=sorted(STORES))
def store(request, tmp_path):
    """A fresh, empty `Store` of each backend."""
    return STORES[request.param](tmp_path)
