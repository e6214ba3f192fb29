"""Batch rounds: requests written as JSONL files, answered by an engine (the OpenAI Batch API, or a
command such as `vllm run-batch`), and the answers read back, matched by custom_id."""
