"""Every neighbour the host offers (tests/e2e/neighbours.py), with each method:

- HTTP 200 with both on;
- the neighbour acts by itself (neighbour on vs off, ours off) and still acts with ours on
  (neighbour on vs off, ours on);
- our infotext tells the truth with the neighbour on: an entry exactly when the pixels differ from
  ours off (neighbour on).
One matrix line per case (SLOTHFUL_E2E_MATRIX).
"""
import pytest

from .client import mean_diff, ours, same, with_scripts
from .expect import METHODS, assert_truth, diff_text
from .neighbours import NEIGHBOURS, base_fields, offered, restore, turn_on


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("name", list(NEIGHBOURS))
def test_neighbour(webui, matrix, name, method):
    spec, why = offered(webui, name)
    if spec is None:
        pytest.skip(why)
    saved = dict(webui.options)
    fields, scripts = turn_on(webui, spec)
    base = base_fields(webui, spec)

    def gen(neighbour_on, ours_on, what):
        payload = webui.payload(**base, **(fields if neighbour_on else {}))
        payload = with_scripts(payload, scripts if neighbour_on else {}, ours(METHODS[method]) if ours_on else {})
        try:
            return webui.txt2img(payload, what=f"{name} {'on' if neighbour_on else 'off'}, {what}")
        finally:
            if neighbour_on:
                restore(webui, spec, saved)

    n_off_o_off = gen(False, False, "ours off")
    n_on_o_off = gen(True, False, "ours off")
    n_off_o_on = gen(False, True, f"{method} on")
    n_on_o_on = gen(True, True, f"{method} on")

    results = {"neighbour off, ours off": n_off_o_off, "neighbour on, ours off": n_on_o_off,
               "neighbour off, ours on": n_off_o_on, "neighbour on, ours on": n_on_o_on}
    ok = all(r.ok for r in results.values())
    matrix.write(neighbour=name, method=method, status=n_on_o_on.status,
                 ours_diff=mean_diff(n_on_o_on, n_on_o_off) if ok else None,
                 neighbour_diff=mean_diff(n_on_o_on, n_off_o_on) if ok else None,
                 neighbour_alone_diff=mean_diff(n_on_o_off, n_off_o_off) if ok else None,
                 entry=n_on_o_on.entry() is not None if n_on_o_on.ok else None,
                 truth=((n_on_o_on.entry() is not None) == (not same(n_on_o_on, n_on_o_off))) if ok else None)

    for what, r in results.items():
        assert r.ok, f"{name} / {method}, {what}: HTTP {r.status}: {r.short()}"
    assert not same(n_on_o_off, n_off_o_off), f"{name} by itself (ours off) changes nothing: check its payload"
    assert not same(n_on_o_on, n_off_o_on), (f"{name} no longer acts with {method} on (neighbour on vs off, ours "
                                             f"on: identical; ours alone {diff_text(n_off_o_on, n_off_o_off)})")
    assert_truth(n_on_o_on, n_on_o_off, f"{method} with {name} on")
