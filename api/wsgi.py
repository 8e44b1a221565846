"""The module gunicorn imports: ``gunicorn api.wsgi:app``."""

from api.app import create_app_from_env

app = create_app_from_env()
