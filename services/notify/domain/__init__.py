"""Rules of notify: message kinds, templates, quiet hours, backoff. No I/O."""
