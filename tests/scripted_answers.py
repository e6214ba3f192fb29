"""A deterministic stand-in for the persona and the judge: answers depend only on the request.

`scripted_answer(messages)` tells the three kinds of request apart by their text (a step turn, the
end reflection, a judge call) and returns a valid StepReaction / EndReflection / judge verdict as a
dict. Used with the in-process ScriptedClient and with the loopback HTTP server.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

TAKEAWAY_ID_RE = re.compile(r"^\[(S\d+\.takeaway)\] Learner takeaway: ", re.MULTILINE)
STEP_RE = re.compile(r"^Step (\d+) of (\d+): (.*)$", re.MULTILINE)
MISUNDERSTANDINGS_RE = re.compile(r"^Misunderstandings that may come up for you \([^)]*\): (.*)\.$", re.MULTILINE)
CRITERION_RE = re.compile(r"^Criterion (\S+) ", re.MULTILINE)


def _last_user(messages: list[dict[str, Any]]) -> str:
    """The last real user turn (a re-ask's feedback message is skipped)."""
    return next(
        m["content"]
        for m in reversed(messages)
        if m["role"] == "user" and not m["content"].startswith("That answer could not be used")
    )


def step_reaction(system: str, step: int, total: int, title: str) -> dict[str, Any]:
    found = MISUNDERSTANDINGS_RE.search(system)
    items = found.group(1).split("; ") if found else ["none"]
    quits = "Chief Allied Health Professional" in system and step == 2
    return {
        "takeaway": f"Step {step} ({title}): fairness needs a consistent process.",
        "how_it_lands": "Useful but I am short of time this week.",
        "relevance": 1 + step % 5,
        "engagement": 1 + (step + 2) % 5,
        "what_i_would_do": "Ask my team how our triage of concerns works.",
        "misunderstandings": [items[(step - 1) % len(items)]],
        "questions": [f"How does step {step} apply to my directorate?"],
        "barriers": [{"kind": "time", "detail": "Board papers due this week"}],
        "would_continue": not quits,
        "continue_reason": "No time for this right now" if quits else "I want to see where it goes",
        "minutes_spent": (5, 10, 15, 20, 30)[step % 5],
    }


END_REFLECTION = {
    "what_changed": "I will check our investigation process for bias.",
    "what_was_missing": "Nothing about my own power in the room.",
    "would_recommend": True,
    "recommend_reason": "Short and practical.",
}


def verdict_for(score: int) -> str:
    return "met" if score >= 4 else "partly met" if score == 3 else "not met"


def judge_verdict(system: str, user: str) -> dict[str, Any]:
    criterion = CRITERION_RE.search(user).group(1)
    takeaways = TAKEAWAY_ID_RE.findall(system)
    score = 1 + zlib.crc32(f"{criterion}|{system[-200:]}".encode()) % 5
    evidence = [takeaways[-1]] if takeaways else []
    if criterion == "lens-power" and len(takeaways) > 1:
        evidence.insert(0, takeaways[0])
    return {"verdict": verdict_for(score), "evidence": evidence, "rationale": f"Scripted verdict for {criterion}.",
            "score": score}  # fmt: skip


def scripted_answer(messages: list[dict[str, Any]]) -> dict[str, Any]:
    system = messages[0]["content"]
    user = _last_user(messages)
    if system.startswith("You evaluate"):
        return judge_verdict(system, user)
    step = STEP_RE.search(user)
    if step:
        return step_reaction(system, int(step.group(1)), int(step.group(2)), step.group(3))
    if user.startswith("That was the last step"):
        return END_REFLECTION
    raise AssertionError(f"unexpected request: {user[:80]!r}")


def scripted_text(messages: list[dict[str, Any]]) -> str:
    return json.dumps(scripted_answer(messages))
