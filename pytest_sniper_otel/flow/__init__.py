"""The instrumented reference bot (documentation follows in the next commit)."""
