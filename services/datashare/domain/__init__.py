"""Rules of the datashare service: no FastAPI, no SQLAlchemy session, no NATS."""
