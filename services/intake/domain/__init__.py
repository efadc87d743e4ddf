"""Rules of the intake service: no FastAPI, no SQLAlchemy session, no NATS."""
