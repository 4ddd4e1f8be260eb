"""Schema migrations: bring any supported database to the newest schema with Alembic."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, inspect, text

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to ``engine`` (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


# Revisions 0006 and 0007 once both followed 0002 (two heads); 0007 now follows 0006, so one
# linear history remains. A database migrated back then is stamped with both: 0007 alone says
# the same once 0006 is its ancestor.
_FORMER_HEADS = {"0006", "0007"}


def _linearize_former_heads(conn: Connection) -> None:
    if not inspect(conn).has_table("alembic_version"):
        return
    stamped = {r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))}
    if stamped >= _FORMER_HEADS:
        conn.execute(text("DELETE FROM alembic_version WHERE version_num = '0006'"))


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run all pending migrations on ``engine`` (one linear history: a single head)."""
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        _linearize_former_heads(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
