"""The alumnos table, defined once for the service and the seeder."""

import hashlib

from sqlalchemy import (
    DDL,
    BigInteger,
    Column,
    Computed,
    Date,
    Index,
    MetaData,
    String,
    Table,
    Text,
    event,
    text,
)
from sqlalchemy.dialects import postgresql

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
# Its search_path is the schema it was made in, named: a writer with another one (a restore's
# is empty, "$user" differs per role) still updates this schema's bookkeeping.
_COUNT_FUNCTION_PATH = (
    "DO $do$ BEGIN EXECUTE 'ALTER FUNCTION ' || quote_ident(current_schema()) || "
    "'.alumnos_track_writes() SET search_path = ' || quote_ident(current_schema()); END $do$")
# The triggers come with the table: created with it, dropped with it.
event.listen(alumnos, "after_create", DDL(_COUNT_FUNCTION))  # type: ignore[no-untyped-call]
event.listen(alumnos, "after_create", DDL(_COUNT_FUNCTION_PATH))  # type: ignore[no-untyped-call]
for _trigger in _TRIGGERS:
    event.listen(alumnos, "after_create", DDL(_trigger))  # type: ignore[no-untyped-call]

# The contract's fields, in the order every page and row shows them: the columns written.
COLUMNS = tuple(c.name for c in alumnos.columns)
ROW_JSON_FUNCTION = "alumnos_row_json"


def _types(*, modifiers: bool) -> list[str]:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    compiled = (alumnos.c[name].type.compile(dialect=dialect) for name in COLUMNS)
    return [kind if modifiers else kind.split("(")[0] for kind in compiled]


def row_json_ddl() -> str:
    """The type and function behind alumnos.as_json: a row's JSON as row_to_json writes it.

    The service only reads, and rendering 100 rows per uncached page was two thirds of
    PostgreSQL's CPU per page (pgbench, same session: 5,300 pages/s rendered per call, 11,700
    joined from the stored text). A stored generated column renders each row once, on every
    write path (COPY, INSERT, UPDATE), so it cannot go stale. row_to_json of a row of the
    contract's own type writes the bytes a page's json_agg wrote before, by construction.
    A generated column asks for an IMMUTABLE function, and this one truly is for these types:
    JSON dates are ISO 8601 whatever the DateStyle, numbers and text have one rendering each,
    and the type is named with its schema, so no search_path (a restore's is empty) and no
    temporary type of the same name changes what it writes. The type's name carries a digest
    of its fields: a type of that name is these fields, and is kept if already there (a copy
    of the table may use it).
    PL/pgSQL, not SQL: an IMMUTABLE SQL function calling row_to_json (STABLE) is not inlined,
    and each call then ran a query of its own (measured on 400,000 rows: 13 us a row against
    4 us).
    """
    fields = ", ".join(f"{name} {kind}"
                       for name, kind in zip(COLUMNS, _types(modifiers=True), strict=True))
    arguments = ", ".join(f"{name} {kind}"
                          for name, kind in zip(COLUMNS, _types(modifiers=False), strict=True))
    row_type = f"alumnos_row_{hashlib.sha256(fields.encode()).hexdigest()[:12]}"
    return (
        "DO $do$ DECLARE home text := quote_ident(current_schema()); BEGIN "
        f"BEGIN EXECUTE 'CREATE TYPE ' || home || '.{row_type} AS ({fields})'; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END; "
        f"EXECUTE 'CREATE OR REPLACE FUNCTION ' || home || '.{ROW_JSON_FUNCTION}({arguments}) "
        "RETURNS text LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$ BEGIN RETURN "
        f"pg_catalog.row_to_json(ROW({', '.join(COLUMNS)})::' || home || '.{row_type})"
        "::pg_catalog.text; END $f$'; "
        "END $do$")


# Each row's JSON, kept by PostgreSQL beside the row (row_json_ddl), made before the table
# whose generated column calls it.
ROW_JSON_COLUMN = "as_json"
event.listen(alumnos, "before_create", DDL(row_json_ddl()))  # type: ignore[no-untyped-call]
alumnos.append_column(Column(ROW_JSON_COLUMN, Text, Computed(
    f"{ROW_JSON_FUNCTION}({', '.join(COLUMNS)})", persisted=True), nullable=False))
