"""Content hashes and canonical JSON: what ties a result to the exact text that produced it."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_hash(text: str) -> str:
    """Short, prefixed hash of a text, used in results and manifests (`sha256:` + 16 hex)."""
    return "sha256:" + sha256_text(text)[:16]
