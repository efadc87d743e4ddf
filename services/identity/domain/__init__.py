"""Rules of the identity service: no FastAPI, no SQLAlchemy session, no NATS."""
