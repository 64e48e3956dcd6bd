"""The import rule migrations share (``versions.import_needed``)."""

from __future__ import annotations

import pytest

from reconciler.errors import StateError
from reconciler.state.versions import import_needed

from .conftest import make_state


def test_import_into_nothing_or_over_an_older_version_of_the_same_lineage() -> None:
    state = make_state().model_copy(update={"serial": 5})
    assert import_needed(
        state, stored_lineage=None, stored_serial=None, same_content=False, where="x"
    )
    assert import_needed(
        state, stored_lineage=state.lineage, stored_serial=3, same_content=False, where="x"
    )


def test_the_same_version_is_nothing_to_do() -> None:
    state = make_state().model_copy(update={"serial": 5})
    assert not import_needed(
        state, stored_lineage=state.lineage, stored_serial=5, same_content=True, where="x"
    )


@pytest.mark.parametrize(
    ("lineage", "serial", "same", "message"),
    [
        ("other-lineage", 1, False, "different history"),
        (None, 6, False, "newer than the serial 5"),
        (None, 5, False, "diverged"),
    ],
)
def test_refusals(lineage: str | None, serial: int, same: bool, message: str) -> None:
    state = make_state().model_copy(update={"serial": 5})
    with pytest.raises(StateError, match=message):
        import_needed(
            state,
            stored_lineage=lineage or state.lineage,
            stored_serial=serial,
            same_content=same,
            where="the destination",
        )
