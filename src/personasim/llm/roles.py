"""Model roles: the `learner` who walks through the module and the `judge` who grades it, each with
its own endpoint and generation settings. The judge defaults to the learner's settings; a judge
block names only what differs. Mode, recordings and prices belong to the run, so both roles share them.

    roles = ModelRoles.of(learner, {"model": "gpt-4o", "temperature": 0})
    clients = build_role_clients(roles)   # one client when both roles talk to the same endpoint
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from personasim.errors import InputError
from personasim.llm.clients import build_client
from personasim.llm.replay import RecordingClient
from personasim.llm.settings import LLMSettings, generation_summary
from personasim.llm.types import ChatClient

ROLES = ("learner", "judge")
SHARED_FIELDS = ("mode", "recordings_dir", "price_table")  # one per run, never per role
# What decides whether two roles can share one client (one connection pool, one limit in flight).
CLIENT_FIELDS = ("base_url", "api_key_env", "concurrency", "timeout_s", "structured_output", "max_tokens_param",
                 "max_attempts", "backoff_initial_s", "max_wait_s", "total_timeout_s")  # fmt: skip


def judge_fields(overrides: dict[str, Any], source: str | Path | None = None) -> dict[str, Any]:
    """A judge block's settings, checked: shared run settings cannot differ per role."""
    shared = sorted(set(overrides) & set(SHARED_FIELDS))
    if shared:
        raise InputError(source, None, f"judge: {', '.join(shared)} is set for the whole run, not per role")
    unknown = sorted(set(overrides) - set(LLMSettings.model_fields))
    if unknown:
        raise InputError(source, None, f"judge: unknown setting {', '.join(unknown)}")
    return {k: v for k, v in overrides.items() if v is not None}


class ModelRoles(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    learner: LLMSettings
    judge: LLMSettings

    @classmethod
    def of(cls, learner: LLMSettings, judge_overrides: dict[str, Any] | None = None) -> ModelRoles:
        judge = learner.with_overrides(**judge_fields(judge_overrides or {})) if judge_overrides else learner
        return cls(learner=learner, judge=judge)

    @property
    def shared_client(self) -> bool:
        fields = set(CLIENT_FIELDS)
        return self.learner.model_dump(include=fields) == self.judge.model_dump(include=fields)

    def summary(self) -> dict[str, dict[str, Any]]:
        """What shapes each role's answers (no key, no recordings path): for manifests and run cards."""
        return {role: generation_summary(getattr(self, role)) for role in ROLES}


@dataclass
class RoleClients:
    """One ChatClient per role (the same object when the roles share an endpoint)."""

    learner: ChatClient
    judge: ChatClient

    def recording_clients(self) -> list[RecordingClient]:
        return [c for c in dict.fromkeys((self.learner, self.judge)) if isinstance(c, RecordingClient)]

    def used_keys(self) -> set[str]:
        return set().union(*(c.used_keys for c in self.recording_clients()))

    async def aclose(self) -> None:
        for client in dict.fromkeys((self.learner, self.judge)):
            await client.aclose()


def build_role_clients(
    roles: ModelRoles, *, calls_dir: Path | None = None, replay_calls: bool = True, check_models: bool = False
) -> RoleClients:
    """Each role's client (see `build_client`: `calls_dir`, the run's call store, both roles in one
    folder, the keys telling them apart; `check_models`, the model check)."""

    def client(settings: LLMSettings, flag_prefix: str) -> ChatClient:
        return build_client(settings, calls_dir=calls_dir, replay_calls=replay_calls, check_models=check_models,
                            flag_prefix=flag_prefix)  # fmt: skip

    learner = client(roles.learner, "--")
    if roles.shared_client:
        return RoleClients(learner, learner)
    judge = client(roles.judge, "--judge-")
    return RoleClients(learner, judge)
