"""Schema migrations: bring any supported database to the newest schema with Alembic.

Every store's ``open`` calls :func:`upgrade`, and so do ``dakghar migrate`` and ``dakghar
restore`` (``cli/upkeep.py``). A database stamped with a revision this code does not know was
written by a newer Dakghar: :func:`upgrade` refuses it (:class:`SchemaTooNew`) instead of letting
Alembic fail with "can't locate revision", so ``serve`` says in one line what to do.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class SchemaTooNew(ValueError):
    """The database carries a schema revision that this version of Dakghar does not know.

    A ``ValueError`` so that ``serve`` reports it as one line (``dakghar: error: ...``).
    """

    def __init__(self, revision: str) -> None:
        super().__init__(
            f"the database schema {revision} is newer than this version of dakghar; upgrade dakghar"
        )
        self.revision = revision


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to ``engine`` (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    """The newest schema revision this code knows (one linear history)."""
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None
    return head


def _known_revisions() -> set[str]:
    return {s.revision for s in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()}


# Revisions 0006 and 0007 once both followed 0002 (two heads); 0007 now follows 0006, so one
# linear history remains. A database migrated back then is stamped with both: 0007 alone says
# the same once 0006 is its ancestor.
_FORMER_HEADS = {"0006", "0007"}


def _stamped(conn: Connection) -> set[str]:
    if not inspect(conn).has_table("alembic_version"):
        return set()
    return {r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))}


def _linearize_former_heads(conn: Connection) -> None:
    if _stamped(conn) >= _FORMER_HEADS:
        conn.execute(text("DELETE FROM alembic_version WHERE version_num = '0006'"))


def check_not_newer(conn: Connection) -> None:
    """Raise :class:`SchemaTooNew` if ``conn``'s database is stamped with an unknown revision."""
    unknown = sorted(_stamped(conn) - _known_revisions())
    if unknown:
        raise SchemaTooNew(unknown[-1])


def current_revision(engine: Engine) -> str | None:
    """The revision the database is stamped with (None: not a migrated Dakghar database)."""
    with engine.connect() as conn:
        stamped = _stamped(conn)
    if stamped >= _FORMER_HEADS:
        stamped -= {"0006"}
    return max(stamped) if stamped else None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run all pending migrations on ``engine`` (one linear history: a single head).

    Raises :class:`SchemaTooNew`, before changing anything, for a database a newer Dakghar wrote.
    """
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        check_not_newer(conn)
        _linearize_former_heads(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
