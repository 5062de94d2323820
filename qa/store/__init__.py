"""STORE: where indexes live. `base` is the interface (`Store`, `IndexReader`, `IndexData`);
`local/` the folder-of-generations backend; `memory` an in-memory reader. `get_store` picks the
backend named in `Settings.store` (only "local" today)."""

from __future__ import annotations

from .base import IndexData, IndexReader, Reusable, Store

BACKENDS = ("local",)


def get_store(settings) -> Store:
    """The `Store` for `settings` (`settings.store` names the backend, `settings.index_dir` where).

    Raises:
        BadInput: an unknown backend name.
    """
    name = getattr(settings, "store", "local")
    if name == "local":
        from .local import LocalStore

        return LocalStore(settings.index_dir)
    from ..errors import BadInput

    raise BadInput(f"Unknown index store {name!r}: use one of {', '.join(BACKENDS)}.")


__all__ = ["BACKENDS", "IndexData", "IndexReader", "Reusable", "Store", "get_store"]
