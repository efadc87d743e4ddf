from services.notify.store.tables import Base
from shared.migrate import run_env

run_env(Base.metadata)
