"""The alumnos table, defined once for the service and the seeder."""

from sqlalchemy import (
    DDL,
    BigInteger,
    Column,
    Date,
    Index,
    MetaData,
    String,
    Table,
    Text,
    event,
    text,
)

metadata = MetaData()

alumnos = Table(
    "alumnos",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("apellido", String(100), nullable=False),
    Column("nombre", String(100), nullable=False),
    Column("nro_documento", BigInteger, nullable=False),
    Column("tipo_documento", String(10), nullable=False),
    Column("fecha_nacimiento", Date, nullable=False),
    Column("sexo", String(1), nullable=False),
    Column("nro_legajo", BigInteger, nullable=False),
    Column("fecha_ingreso", Date, nullable=False),
    # ASCII by construction: bytewise "C" collation makes the unique index cheaper to build.
    Column("email", String(200, collation="C"), nullable=False),
)

# Unique indexes rather than inline constraints: the seeder drops and rebuilds them around a
# bulk COPY, which is several times faster than maintaining three B-trees row by row.
UNIQUE_INDEXES = (
    Index("alumnos_nro_documento_key", alumnos.c.nro_documento, unique=True),
    Index("alumnos_nro_legajo_key", alumnos.c.nro_legajo, unique=True),
    Index("alumnos_email_key", alumnos.c.email, unique=True),
)

# One row describing the table: what the seeder promised, and two figures kept exact by
# statement-level triggers on every write, whoever makes it: the row count (so the service never
# runs count(*) per request) and a version that changes with any write (so the service knows
# when its offset bookmarks are stale).
seed_state = Table(
    "alumnos_seed_state",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("seed", BigInteger, nullable=False),
    Column("target_count", BigInteger, nullable=False),
    Column("row_count", BigInteger, nullable=False, server_default="0"),
    # Starts at the creation time in microseconds, so a recreated table never reuses a version.
    Column("version", BigInteger, nullable=False,
           server_default=text("(extract(epoch FROM clock_timestamp()) * 1000000)::bigint")),
    Column("status", Text, nullable=False),  # 'loading' | 'complete'
)

_COUNT_FUNCTION = f"""
CREATE OR REPLACE FUNCTION alumnos_track_writes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE {seed_state.name} SET row_count = row_count + (SELECT count(*) FROM new_rows),
                                 version = version + 1 WHERE id = 1;
  ELSIF TG_OP = 'DELETE' THEN
    UPDATE {seed_state.name} SET row_count = row_count - (SELECT count(*) FROM old_rows),
                                 version = version + 1 WHERE id = 1;
  ELSIF TG_OP = 'TRUNCATE' THEN
    UPDATE {seed_state.name} SET row_count = 0, version = version + 1 WHERE id = 1;
  ELSE
    UPDATE {seed_state.name} SET version = version + 1 WHERE id = 1;
  END IF;
  RETURN NULL;
END $$
"""
_TRIGGERS = (
    "CREATE TRIGGER alumnos_track_insert AFTER INSERT ON alumnos "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION alumnos_track_writes()",
    "CREATE TRIGGER alumnos_track_delete AFTER DELETE ON alumnos "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION alumnos_track_writes()",
    "CREATE TRIGGER alumnos_track_update AFTER UPDATE ON alumnos "
    "FOR EACH STATEMENT EXECUTE FUNCTION alumnos_track_writes()",
    "CREATE TRIGGER alumnos_track_truncate AFTER TRUNCATE ON alumnos "
    "FOR EACH STATEMENT EXECUTE FUNCTION alumnos_track_writes()",
)
# The triggers come with the table: created with it, dropped with it.
event.listen(alumnos, "after_create", DDL(_COUNT_FUNCTION))  # type: ignore[no-untyped-call]
for _trigger in _TRIGGERS:
    event.listen(alumnos, "after_create", DDL(_trigger))  # type: ignore[no-untyped-call]

COLUMNS = tuple(c.name for c in alumnos.columns)
