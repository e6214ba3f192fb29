"""The deterministic double's answers for the batch tests (live, Batch API and command runs alike):
each depends only on the request; p19's third step is first answered with JSON cut short, so its
conversations take one call (a re-ask) more than the others."""

from __future__ import annotations

from doubles.openai_server import Reply
from scripted_answers import scripted_answer

REASKED = ("Information Governance Lead", "Step 3 of")


def responder(body: dict) -> Reply:
    messages = body["messages"]
    system, last = messages[0]["content"], messages[-1]["content"]
    if REASKED[0] in system and last.startswith(REASKED[1]):
        return Reply.ok('{"takeaway": "I think')
    return Reply.json(scripted_answer(messages))


# A stand-in for `vllm run-batch -i IN -o OUT` answering with `responder` (tests/doubles/run_batch.py
# maps the lines); written to a file and run as the batch command.
COMMAND_SCRIPT = """
import json, sys
from pathlib import Path
sys.path[:0] = [{tests!r}, {tests!r} + "/doubles"]
from run_batch import map_batch, parse_lines
from batch_answers import responder
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
lines = parse_lines(Path(args["-i"]).read_text(encoding="utf-8"))
Path(args["-o"]).write_text("".join(json.dumps(o) + "\\n" for o in map_batch(lines, responder)), encoding="utf-8")
"""
