"""STORE: where indexes live. `base` is the interface (`Store`, `IndexReader`, `IndexData`);
`local/` the folder-of-generations backend; `milvus/` collections on a Milvus server or in a
Milvus Lite file (the optional extra `qa[milvus]`); `memory` an in-memory reader. `get_store`
picks the backend named in `Settings.store`."""

from __future__ import annotations

from pathlib import Path

from .base import IndexData, IndexReader, Reusable, Store

BACKENDS = ("local", "milvus")


def get_store(settings) -> Store:
    """The `Store` for `settings` (`settings.store` names the backend; `settings.index_dir` is where
    the local one lives, `settings.milvus_uri` / `milvus_token` / `milvus_prefix` where the milvus one does).

    Raises:
        BadInput: an unknown backend name.
    """
    name = getattr(settings, "store", "local")
    if name == "local":
        from .local import LocalStore

        return LocalStore(settings.index_dir)
    if name == "milvus":
        from .milvus import MilvusStore

        uri = settings.milvus_uri or str(Path(settings.index_dir) / "milvus.db")
        return MilvusStore(uri, settings.milvus_token, settings.milvus_prefix,
                           cache_dir=Path(settings.index_dir) / ".cache")
    from ..errors import BadInput

    raise BadInput(f"Unknown index store {name!r}: use one of {', '.join(BACKENDS)}.")


def describe(settings) -> str:
    """Where the index of `settings` lives, for messages: "index/" or "Milvus at URI"."""
    if getattr(settings, "store", "local") == "milvus":
        uri = settings.milvus_uri or str(Path(settings.index_dir) / "milvus.db")
        return f"Milvus Lite file {uri}" if "://" not in uri else f"Milvus at {uri}"
    return f"{settings.index_dir}/"


def index_command(settings) -> str:
    """The `qa index` command that builds the index of `settings`."""
    if getattr(settings, "store", "local") == "milvus":
        uri = settings.milvus_uri or str(Path(settings.index_dir) / "milvus.db")
        return f"qa index --store milvus --milvus-uri {uri}"
    return "qa index"


__all__ = ["BACKENDS", "IndexData", "IndexReader", "Reusable", "Store", "describe", "get_store", "index_command"]
