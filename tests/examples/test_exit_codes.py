"""docs/exit-codes.md lists exactly the codes the CLI can exit with, each with its class."""

from __future__ import annotations

import re
from pathlib import Path

from reconciler import errors

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "exit-codes.md"

# Codes that belong to no error class: success, "changes" under --detailed-exitcode, the
# internal-error fallback of main() (reconciler/cli/app.py) and SIGTERM's 143 (RunCancelled
# and the signal guard exit 128 + the signal; the class itself carries SIGINT's 130).
NOT_FROM_CLASSES = {0, 2, 70, 143}

_ROW = re.compile(r"^\| (\d+) \| *(`(\w+)`)? *\|", re.MULTILINE)


def error_classes() -> list[type[errors.ReconcilerError]]:
    found: list[type[errors.ReconcilerError]] = []
    pending: list[type[errors.ReconcilerError]] = [errors.ReconcilerError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return [cls for cls in found if cls.__module__ == errors.__name__]


def documented_rows() -> dict[int, str | None]:
    return {int(code): name for code, _, name in _ROW.findall(DOC.read_text(encoding="utf-8"))}


def test_every_exit_code_of_an_error_class_is_documented() -> None:
    codes = {cls.exit_code for cls in error_classes()}
    assert codes <= set(documented_rows()), sorted(codes - set(documented_rows()))


def test_nothing_documented_that_the_cli_cannot_exit_with() -> None:
    codes = {cls.exit_code for cls in error_classes()} | NOT_FROM_CLASSES
    assert set(documented_rows()) == codes


def test_each_row_names_the_class_that_owns_the_code() -> None:
    owners: dict[int, set[str]] = {}
    for cls in error_classes():
        owners.setdefault(cls.exit_code, set()).add(cls.__name__)
    for code, name in documented_rows().items():
        if code in NOT_FROM_CLASSES:
            continue
        assert name in owners[code], (code, name, owners[code])


def test_budget_and_capacity_codes_are_the_ones_scripts_rely_on() -> None:
    rows = documented_rows()
    assert rows[11] == "BudgetError" and errors.BudgetError.exit_code == 11
    assert rows[9] == "CapacityError" and errors.CapacityError.exit_code == 9
