"""The simulated department's rules and the webhook checks: pure, no I/O."""
