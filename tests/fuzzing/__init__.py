"""Grammar-based fuzzing of the rewriter (used by tests/test_fuzz.py)."""
