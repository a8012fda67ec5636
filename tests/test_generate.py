"""The generator: deterministic, unique where the schema says so, plausible values."""

from __future__ import annotations

from datetime import date

from alumnos_cli.seed.generate import (
    BLOCK_ROWS,
    DOCUMENT_SPACE,
    LEGAJO_SPACE,
    REFERENCE_DAY,
    block_lines,
    copy_chunks,
    document_number,
    legajo_number,
    name_pools,
)


def _rows(seed: int, start: int, stop: int, chunk: int) -> list[list[str]]:
    text = "".join(t for _, t in copy_chunks(seed, start, stop, chunk))
    return [line.split("\t") for line in text.splitlines()]


def test_same_seed_same_rows_whatever_the_chunk_size() -> None:
    assert _rows(7, 0, 25_000, 1_000) == _rows(7, 0, 25_000, 24_999)


def test_different_seeds_give_different_rows() -> None:
    assert _rows(1, 0, 100, 100) != _rows(2, 0, 100, 100)


def test_resuming_mid_block_gives_the_rows_a_full_run_gives() -> None:
    full = _rows(3, 0, 15_000, 5_000)
    assert _rows(3, 12_345, 15_000, 700) == full[12_345:]
    assert [int(r[0]) for r in full] == list(range(1, 15_001))


def test_document_and_legajo_are_unique_over_200k_rows_and_in_range() -> None:
    documents = {document_number(n) for n in range(200_000)}
    legajos = {legajo_number(n) for n in range(200_000)}
    assert len(documents) == len(legajos) == 200_000
    assert all(10_000_000 <= d < 10_000_000 + DOCUMENT_SPACE for d in documents)
    assert all(100_000_000 <= x < 100_000_000 + LEGAJO_SPACE for x in legajos)


def test_values_are_plausible_for_students() -> None:
    pools = name_pools(11)
    female = {name for name, _ in pools.female}
    male = {name for name, _ in pools.male}
    reference = date.fromordinal(REFERENCE_DAY)
    rows = [line.rstrip("\n").split("\t") for line in block_lines(11, 0, pools)]
    assert len(rows) == BLOCK_ROWS
    emails = set()
    for row_id, apellido, nombre, _doc, tipo, born, sexo, _leg, admitted, email in rows:
        born_on, admitted_on = date.fromisoformat(born), date.fromisoformat(admitted)
        age = reference.year - born_on.year - ((reference.month, reference.day) <
                                               (born_on.month, born_on.day))
        assert 17 <= age <= 60, row_id
        assert admitted_on <= reference
        age_at_admission = admitted_on.year - born_on.year - (
            (admitted_on.month, admitted_on.day) < (born_on.month, born_on.day))
        assert age_at_admission >= 17, row_id
        assert sexo in {"F", "M"}
        assert nombre in (female if sexo == "F" else male)
        assert tipo in {"DNI", "PAS"}
        assert apellido and nombre == nombre.strip()
        assert email.endswith("@alumnos.universidad.edu.ar") and email.isascii()
        emails.add(email)
    assert len(emails) == len(rows)
    assert 0.4 < sum(r[6] == "F" for r in rows) / len(rows) < 0.65
