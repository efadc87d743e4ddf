"""What the pages compute from the APIs' answers: pure functions, no I/O, tested without a server."""
