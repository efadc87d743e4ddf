from services.efficacy.store import projects  # noqa: F401  (its tables join Base.metadata)
from services.efficacy.store.tables import Base
from shared.migrate import run_env

run_env(Base.metadata)
