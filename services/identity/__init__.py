"""Identity: People, organisations, accounts, tokens (JWT + JWKS), staff roles, department system clients and delegation (委托代办)."""
