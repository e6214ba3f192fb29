"""The loopback fake OpenAI server in its own process, for the benchmarks.

A real LLM server runs outside the harness's process; running the fake one inside it would let
its request parsing and JSON encoding compete for the harness's GIL and be timed as harness
overhead. Protocol: prints one JSON line `{"base_url": ...}` once listening, serves scripted
persona/judge answers (tests/scripted_answers.py) after `--latency` seconds each, and when its
stdin closes prints one JSON line of statistics and exits.

    python bench/_server.py --latency 0.1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from http.server import ThreadingHTTPServer  # noqa: E402

from doubles.openai_server import FakeOpenAIServer, Reply  # noqa: E402
from scripted_answers import scripted_answer  # noqa: E402

# The stdlib default listen backlog (5) refuses connections when 64 clients connect at once;
# a real server's is in the hundreds. Only this process's servers are affected.
ThreadingHTTPServer.request_queue_size = 1024


def prompt_chars(body: dict) -> int:
    """Characters of message content the client sent (a proxy for prompt tokens: ~4 per token)."""
    return sum(len(str(m.get("content") or "")) for m in body.get("messages", []))


def kind(body: dict) -> str:
    """judge, reflection or step: what the request asks (the scripted answers tell them apart the same way)."""
    messages = body.get("messages") or [{}]
    if str(messages[0].get("content", "")).startswith("You evaluate"):
        return "judge"
    users = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
    return "reflection" if users and users[-1].startswith("That was the last step") else "step"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds before each answer")
    args = parser.parse_args()
    with FakeOpenAIServer() as server:
        server.responder = lambda body: Reply.json(scripted_answer(body["messages"]), latency_s=args.latency)
        print(json.dumps({"base_url": server.base_url}), flush=True)
        sys.stdin.read()  # until the parent closes our stdin
        chats = server.chat_requests
        stats = {
            "chat_requests": len(chats),
            "max_in_flight": server.max_in_flight,
            "cpu_s": round(time.process_time(), 3),
            "prompt_chars": [prompt_chars(r.body) for r in chats],
            "kinds": [kind(r.body) for r in chats],
        }
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
