"""Scoring saved transcripts: the LLM judge and the deterministic graders."""
