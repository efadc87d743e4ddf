"""Rules of the workflow service: process steps, due dates in working days, decisions and stage outcomes.
Pure: no I/O, no FastAPI, no database session, no bus."""
