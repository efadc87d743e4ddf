from services.workflow.store import joint_reviews  # noqa: F401  (its tables join Base.metadata)
from services.workflow.store.tables import Base
from shared.migrate import run_env

run_env(Base.metadata)
