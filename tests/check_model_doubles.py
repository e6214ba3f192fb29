"""Scripted learner/judge test doubles for check-model: each answers from the request alone, with
one property switched on or off, so the scorecard's checks can be shown to discriminate.

- faithful: the learner speaks from its persona (its own potential misunderstandings) and from the
  step's content; the judge credits the lenses of anti-racism content only when the learner's
  statements carry it, and names the profile sharing most words with the statements.
- alike: as faithful, but every persona answers the same (nothing persona-specific).
- blind: as faithful, but the learner ignores the step's content.
- lenient: as faithful, but the judge gives 5 to everything.
Answers vary with the request's seed only when its temperature is above 0, as a sampler would.
"""

from __future__ import annotations

import re
from typing import Any

from doubles.openai_server import Reply

TITLE_RE = re.compile(r"You are a real person, not an AI: ([^.(]+)")
MISUNDERSTANDINGS_RE = re.compile(r"^Misunderstandings that may come up for you \([^)]*\): (.*)\.$", re.MULTILINE)
STEP_RE = re.compile(r"^Step (\d+) of (\d+): ([^\n(]+)", re.MULTILINE)
LENS_RE = re.compile(r"^Criterion (\S+) \(lens: (\w+)\)", re.MULTILINE)
STATEMENT_RE = re.compile(r"^\[([A-Z0-9]+\.\w+)\] [^:]+: (.*)$", re.MULTILINE)
PROFILE_RE = re.compile(r"^([A-Z]): (.*)$", re.MULTILINE)
ANTI_RACISM = ("racism", "racist", "equity", "wres", "inclusive")
CONTENT_LENSES = ("power", "inclusion", "difference")


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]{4,}", text.lower())}


def _draw(body: dict[str, Any]) -> str:
    return f" (draw {body.get('seed')})" if body.get("temperature", 0) > 0 else ""


def _learner(body: dict[str, Any], *, personal: bool, reads: bool) -> dict[str, Any]:
    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    found = MISUNDERSTANDINGS_RE.search(system)
    mine = found.group(1).split("; ") if found and personal else ["whether this applies to me"]
    step = STEP_RE.search(user)
    if step is None:  # the end reflection
        return {"what_changed": "I will look again at how we handle concerns." + _draw(body),
                "what_was_missing": "More on my own context.", "would_recommend": True,
                "recommend_reason": "Useful on the whole."}  # fmt: skip
    index = int(step.group(1))
    content = user.split("\n", 1)[1].split("(Remember:", 1)[0] if reads else ""
    said = " ".join(content.split()[:40]) or "this part of the webinar"
    item = mine[(index - 1) % len(mine)]
    return {
        "takeaway": f"Step {index}: {said}"[:280],
        "how_it_lands": (f"I keep coming back to {item}" if personal else "It is relevant to my work") + _draw(body),
        "relevance": 3, "engagement": 3, "what_i_would_do": "Talk to my team about it.",
        "misunderstandings": [item[:190]], "questions": ["How do I start?"], "barriers": [],
        "would_continue": True, "continue_reason": "I want to see the rest", "minutes_spent": 5,
    }  # fmt: skip


def _judge(body: dict[str, Any], *, lenient: bool) -> dict[str, Any]:
    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    criterion, lens = LENS_RE.search(user).groups()
    statements = STATEMENT_RE.findall(system)
    title = system.split("## The learner\n", 1)[1].split("\n", 1)[0]
    persona_level = 4 + sum(map(ord, title)) % 2  # stable per persona: 4 or 5
    carrying = [sid for sid, text in statements if any(w in text.lower() for w in ANTI_RACISM)]
    if lenient:
        score, cited = 5, [statements[0][0]]
    elif lens in CONTENT_LENSES:
        score, cited = (persona_level, carrying[:1]) if carrying else (persona_level - 3, [])
    else:
        score, cited = persona_level, [statements[0][0]]
    verdict = "met" if score >= 4 else "partly met" if score == 3 else "not met"
    return {"verdict": verdict, "evidence": cited, "rationale": f"{criterion}: scripted{_draw(body)}", "score": score}


def _identify(body: dict[str, Any]) -> dict[str, Any]:
    prompt = body["messages"][-1]["content"]
    head, written = prompt.split("## What the learner wrote", 1)
    profiles = PROFILE_RE.findall(head.split("## Profiles", 1)[1])
    said = _words(written)
    best = max(profiles, key=lambda p: len(_words(p[1]) & said))  # ties: the first profile
    return {"reasoning": "shared words", "profile": best[0]}


def responder(kind: str):  # type: ignore[no-untyped-def]
    """A FakeOpenAIServer responder for one double: faithful, alike, blind or lenient."""
    personal, reads, lenient = kind != "alike", kind != "blind", kind == "lenient"

    def answer(body: dict[str, Any]) -> Reply:
        first = body["messages"][0]["content"]
        if first.startswith("You read what a simulated learner wrote"):
            return Reply.json(_identify(body))
        if first.startswith("You evaluate"):
            return Reply.json(_judge(body, lenient=lenient))
        return Reply.json(_learner(body, personal=personal, reads=reads))

    return answer
