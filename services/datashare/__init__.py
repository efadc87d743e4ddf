"""Datashare: E-certificates (电子证照), base registries, purpose-bound data sharing with an access log the citizen can read, open data."""
