"""`python -m services.console`: serve the supervisors' console and the clerk's desk (default 127.0.0.1:8180)."""

import logging

from services.console.app import create_app
from services.console.config import ConsoleSettings
from shared.observability import configure_logging
from shared.serving import serve

settings = ConsoleSettings()
configure_logging(settings.platform.log_level, settings.platform.log_json)
logging.getLogger("httpx").setLevel(logging.WARNING)
serve(create_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False)
