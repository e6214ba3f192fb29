"""What a run writes about each conversation: transcripts and their versioned on-disk types."""
