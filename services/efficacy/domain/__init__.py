"""Efficacy's rules: pure functions over dates, facts and the working-day calendar (no I/O)."""
