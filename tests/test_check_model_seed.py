"""The local model's measured scorecard, replayed in CI: `check-model` on the seed suite's
`check_model:` block, from the calls recorded on the 1.5B model (`evals/recordings/lotus-qwen1.5b-check`),
gives the scorecard committed beside them (`evals/lotus-qwen1.5b-check.json`, which the README quotes):
the same verdict and, check by check, the same value, result and detail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECORDINGS = REPO / "evals" / "recordings" / "lotus-qwen1.5b-check"
EXPECTED = REPO / "evals" / "lotus-qwen1.5b-check.json"


def test_the_recorded_scorecard_of_the_local_model_replays_exactly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    args = ["check-model", "--suite", "evals/lotus.yaml", "--mode", "replay", "--recordings-dir", str(RECORDINGS),
            "--out", str(tmp_path), "--run-id", "replayed", "--json"]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", "from personasim.cli import main; main()", *args], cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    card, expected = json.loads(done.stdout), json.loads(EXPECTED.read_text(encoding="utf-8"))
    assert card["verdict"] == expected["verdict"]
    shown = ("name", "value", "passed", "detail")
    assert [[c[k] for k in shown] for c in card["checks"]] == [[c[k] for k in shown] for c in expected["checks"]]
    assert card["hashes"] == expected["hashes"] and card["config"] == expected["config"]

    def generation(roles: dict) -> dict:  # the recording run's server address is not the model's
        return {role: {k: v for k, v in settings.items() if k != "base_url"} for role, settings in roles.items()}

    assert generation(card["roles"]) == generation(expected["roles"])


def test_a_run_of_the_seed_suite_shows_the_scorecard_its_suite_records(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run([sys.executable, "-c", "from personasim.cli import main; main()", "run", "--suite",
                           "evals/lotus.yaml", "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    verdict = json.loads(EXPECTED.read_text(encoding="utf-8"))["verdict"]
    assert f"check-model: {verdict} ({EXPECTED})" in done.stdout
