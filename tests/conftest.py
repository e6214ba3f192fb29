"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from doubles.openai_server import FakeOpenAIServer


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    """A started fake OpenAI server on 127.0.0.1 (see tests/doubles/openai_server.py)."""
    with FakeOpenAIServer() as server:
        yield server
