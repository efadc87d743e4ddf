"""Rules of the efficacy service: no FastAPI, no SQLAlchemy session, no NATS."""
