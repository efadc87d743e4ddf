"""Rules of the workflow service: no FastAPI, no SQLAlchemy session, no NATS."""
