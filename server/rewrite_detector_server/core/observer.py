"""The detector's observation seam: what it reports about its own work, for metrics kept outside the core.

The core must not import a metrics library; the server wires an implementation (``metrics.py``) in.
Methods are called on the request thread and must be cheap and never raise.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["DetectorObserver", "NullObserver"]


class DetectorObserver(Protocol):
    def on_embed_batch(self, size: int) -> None:
        """The model embedded ``size`` texts in one call (only texts the embedding cache lacked)."""
        ...

    def on_embedding_cache(self, hits: int, misses: int) -> None:
        """Of the paragraphs needing an embedding, ``hits`` came from the store, ``misses`` did not."""
        ...


class NullObserver:
    """Observes nothing: the default when no metrics are configured."""

    def on_embed_batch(self, size: int) -> None:
        pass

    def on_embedding_cache(self, hits: int, misses: int) -> None:
        pass
