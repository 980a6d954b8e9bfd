"""What a source keeps of a record: finite numbers, real positions, dates a camera could write."""

from __future__ import annotations

import math

import pytest

from geolocate.acquire.records import epoch_ms, in_box, is_position, iso_ms, number


@pytest.mark.parametrize("value, expected", [(3, 3.0), (2.5, 2.5), (True, None), ("4", None), (math.inf, None), (math.nan, None),
                                             (10**400, None), (None, None)])
def test_number_is_a_finite_real(value, expected):
    assert number(value) == expected


@pytest.mark.parametrize("coords, ok", [([2.0, 45.0], True), ([2.0, 91.0], False), ([math.nan, 45.0], False),
                                        ([math.inf, 1.0], False), ([True, 1.0], False), ([10**400, 1.0], False), ([1.0], False),
                                        ("2,45", False), (None, False)])
def test_a_geojson_position_is_finite_and_on_the_globe(coords, ok):
    assert is_position(coords) is ok


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "1850-01-01T00:00:00Z", "not a date", None])
def test_an_impossible_date_is_none(text):
    assert iso_ms(text) is None


def test_a_real_date_and_epoch():
    assert iso_ms("2024-05-01T10:00:00+02:00") == iso_ms("2024-05-01T08:00:00Z") == 1714550400000
    assert epoch_ms(1714550400000) == 1714550400000 and epoch_ms(10**30) is None and epoch_ms(True) is None


def test_in_box_includes_the_edges():
    box = (2.0, 45.0, 2.5, 45.5)
    assert in_box({"lat": 45.0, "lon": 2.5}, box) and not in_box({"lat": 10.0, "lon": 100.0}, box)
