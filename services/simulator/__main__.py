"""`python -m services.simulator`: serve the department simulator (default 127.0.0.1:8190)."""

import logging

from services.simulator.app import create_app
from services.simulator.config import SimulatorSettings
from shared.observability import configure_logging
from shared.serving import serve

settings = SimulatorSettings()
configure_logging(settings.platform.log_level, settings.platform.log_json)
# One line per call to identity and workflow drowns what matters; failures are logged by the simulator itself.
logging.getLogger("httpx").setLevel(logging.WARNING)
serve(create_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False)
