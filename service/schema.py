"""The alumnos table, defined once for the service and the seeder."""

from sqlalchemy import BigInteger, Column, Date, Index, MetaData, String, Table, Text

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
    Column("email", String(200), nullable=False),
)

# Unique indexes rather than inline constraints: the seeder drops and rebuilds them around a
# bulk COPY, which is several times faster than maintaining three B-trees row by row.
UNIQUE_INDEXES = (
    Index("alumnos_nro_documento_key", alumnos.c.nro_documento, unique=True),
    Index("alumnos_nro_legajo_key", alumnos.c.nro_legajo, unique=True),
    Index("alumnos_email_key", alumnos.c.email, unique=True),
)

# One row per seeded table: what the seeder promised and how far it got. The service reads the
# exact row count from here instead of running count(*) on every request.
seed_state = Table(
    "alumnos_seed_state",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("seed", BigInteger, nullable=False),
    Column("target_count", BigInteger, nullable=False),
    Column("loaded_count", BigInteger, nullable=False),
    Column("status", Text, nullable=False),  # 'loading' | 'complete'
)

COLUMNS = tuple(c.name for c in alumnos.columns)
