"""Streamed LLM answers, read whole inside the interceptor chain and handed on as the same chunks.

A cassette can only store (and a fault only change) an answer it has whole, so the
integrations read a stream to its end inside the chain (:class:`Chunks`) and give the
caller a :class:`RecordedStream` of those chunks, live or replayed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["Chunks", "RecordedStream"]


class Chunks(list[Any]):
    """The chunks of a stream read whole, remembering the stream object they came from (a cassette
    stores them as a plain list; on replay there is no stream object)."""

    def __init__(self, chunks: Iterable[Any], origin: Any = None) -> None:
        super().__init__(chunks)
        self.origin = origin


class RecordedStream:
    """The chunks of a streamed answer, handed to the caller in place of the client's stream.

    Iterates (sync and async) like the SDKs' ``Stream`` / ``AsyncStream`` and litellm's stream
    wrapper, works as a context manager, and has the SDKs' ``response`` (the live one, or an
    empty 200 on replay) so their stream helpers accept it. Other attributes are the live
    stream's (none on replay).
    """

    def __init__(self, chunks: list[Any], response: Any = None) -> None:
        self._chunks = chunks
        self._iterator: Iterator[Any] = iter(chunks)
        self._origin = chunks.origin if isinstance(chunks, Chunks) else None
        self.response = response if response is not None else getattr(self._origin, "response", None)

    def __getattr__(self, name: str) -> Any:
        origin = self.__dict__.get("_origin")
        if origin is None or name.startswith("__"):
            raise AttributeError(f"a recorded stream has no attribute {name!r}")
        return getattr(origin, name)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self._iterator)

    def __aiter__(self) -> RecordedStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return next(self._iterator)
        except StopIteration:
            raise StopAsyncIteration from None

    def __enter__(self) -> RecordedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> RecordedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing left to release: the answer was read whole."""
        self._iterator = iter(())

    async def aclose(self) -> None:
        self.close()
