"""The parameter table: validation, defaults, positional and named arguments."""
import math

import pytest

from lib_slothful.params import DEFAULTS, PARAMS, from_args, to_args, validate

EXPECTED_KEYS = [  # the original nodes' names, plus this extension's method / profile / schedule / passes
    "enabled", "method", "profile", "schedule", "peak_time", "time_decay",
    "in_mode", "in_depth_decay", "in_slothful", "in_k_blend", "in_v_blend",
    "middle_mode", "middle_depth_decay", "middle_slothful", "middle_k_blend", "middle_v_blend",
    "out_mode", "out_depth_decay", "out_slothful", "out_k_blend", "out_v_blend",
    "tiling_max_depth", "tile_size", "global_ratio", "base_tile_size", "peak_tile_size",
    "base_global_ratio", "peak_global_ratio", "concat_local", "concat_global", "first_pass", "hires_pass",
    "preset", "size_gate"]  # appended later: positional API arguments keep their places


def test_table_keys_and_node_defaults():
    assert [p.key for p in PARAMS] == EXPECTED_KEYS
    node_defaults = {"peak_time": 0.4, "time_decay": 2.0, "in_mode": "2D_AVG", "in_depth_decay": 2.0,
                     "in_slothful": 6.0, "out_slothful": 4.0, "in_k_blend": 0.0, "tiling_max_depth": 2,
                     "tile_size": 32, "global_ratio": 0.5, "base_tile_size": 24, "peak_tile_size": 32,
                     "base_global_ratio": 0.2, "peak_global_ratio": 0.8, "concat_local": False}
    for k, v in node_defaults.items():
        assert DEFAULTS[k] == v, k
    assert DEFAULTS["middle_slothful"] == 0.0  # middle block off by default


def test_partial_dict_takes_defaults_and_round_trips():
    s = validate({"in_slothful": 8, "method": "Near-sighted Attention"})
    assert s["in_slothful"] == 8.0 and isinstance(s["in_slothful"], float)
    assert s["method"] == "nearsighted_attention"  # labels are accepted, values are canonical
    assert s["out_slothful"] == 4.0 and len(s) == len(PARAMS)
    assert validate(s) == s and validate(dict(s)) is not s


@pytest.mark.parametrize("key,value,needle", [
    ("in_slothful", 50.5, "from 0 to 50"),
    ("in_slothful", -1, "from 0 to 50"),
    ("in_slothful", math.nan, "in_slothful"),
    ("peak_time", math.inf, "peak_time"),
    ("peak_time", "0.5", "peak_time"),
    ("tile_size", 32.5, "an integer from 16 to 96"),
    ("tile_size", 8, "an integer from 16 to 96"),
    ("tile_size", True, "tile_size"),
    ("concat_local", 1, "true or false"),
    ("method", "fast", "slothful, nearsighted_tile, nearsighted_attention"),
    ("in_mode", "3D_AVG", "2D_AVG"),
])
def test_bad_values_name_the_key_and_range(key, value, needle):
    with pytest.raises(ValueError) as e:
        validate({key: value})
    assert key in str(e.value) and needle in str(e.value)


def test_unknown_key():
    with pytest.raises(ValueError, match="in_slothfull"):
        validate({"in_slothfull": 3})


def test_integral_float_is_an_int():
    assert validate({"tile_size": 40.0})["tile_size"] == 40 and isinstance(validate({"tile_size": 40.0})["tile_size"], int)


def test_positional_and_named_arguments():
    s = validate({"enabled": True, "method": "nearsighted_tile", "tile_size": 20})
    assert from_args(to_args(s)) == s
    assert from_args([True, "Near-sighted Tile"])["method"] == "nearsighted_tile"  # trailing args: defaults
    named = from_args([{"method": "nearsighted_tile", "tile_size": 20}, "junk", 3])  # the WebUI pads with UI values
    assert named == s  # a dict means enabled
    assert from_args([{"in_slothful": 2, "enabled": False}])["enabled"] is False
    with pytest.raises(ValueError, match="too many"):
        from_args([False] * (len(PARAMS) + 1))
    with pytest.raises(ValueError, match="out_k_blend"):
        from_args([{"out_k_blend": 2}])
