"""Rules of the catalog service: no FastAPI, no SQLAlchemy session, no NATS."""
