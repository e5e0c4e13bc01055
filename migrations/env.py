"""Alembic environment: the URL comes from ``config.attributes['url']`` (set by the app's CLI and
tests), else ``MVNO_DATABASE_URL``, else the embedded server is started."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from mvno_core.kernel.config import get_settings
from mvno_core.kernel.db import normalise_url
from mvno_core.kernel.embedded import resolve_database_urls
from mvno_core.models import metadata

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    # Migrations run as the owner (MVNO_MIGRATION_DATABASE_URL), never as the service's role.
    url = config.attributes.get("url") or resolve_database_urls(get_settings()).owner
    return normalise_url(url)


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return True


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, include_object=include_object)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
