"""The stored JSON form: deterministic text, strict decoding."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.errors import StateError
from reconciler.state.codec import decode_state, encode_document, encode_state

from .conftest import make_state

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6))
def test_encoding_matches_pretty_sorted_json(document: dict[str, object]) -> None:
    expected = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert encode_document(document).decode("utf-8") == expected


def test_encode_decode_round_trip() -> None:
    state = make_state()
    text = encode_state(state)
    assert decode_state(text, fleet="inference", where="test") == state
    assert decode_state(text.encode(), fleet="inference", where="test") == state


def test_encoding_is_independent_of_insertion_order() -> None:
    state = make_state(instances=5)
    reordered = state.model_copy(update={"instances": dict(reversed(state.instances.items()))})
    assert encode_state(reordered) == encode_state(state)


def test_unknown_fields_are_a_damaged_state() -> None:
    document = make_state().model_dump(mode="json") | {"surprise": 1}
    with pytest.raises(StateError, match="damaged: surprise"):
        decode_state(json.dumps(document), fleet="inference", where="x.json")


def test_damage_report_does_not_echo_values() -> None:
    document = make_state().model_dump(mode="json")
    document["instances"]["inference/worker-0"]["instance_id"] = {"secret": "hunter2"}
    with pytest.raises(StateError) as caught:
        decode_state(json.dumps(document), fleet="inference", where="x.json")
    assert "instances.inference/worker-0.instance_id" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_invalid_utf8_is_not_valid_json() -> None:
    with pytest.raises(StateError, match="not valid JSON"):
        decode_state(b"\xff\xfe{", fleet="inference", where="x.json")
