from services.catalog.app import create_app
from shared.service import run

run(create_app, "catalog")
