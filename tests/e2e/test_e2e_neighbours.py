"""Every neighbour the host offers (tests/e2e/neighbours.py), with each method:

- HTTP 200 with both on;
- the neighbour acts by itself (neighbour on vs off, ours off; where it does not, on this model and
  size, the case is skipped: there is nothing to check) and still acts with ours on (neighbour on vs
  off, ours on);
- our infotext tells the truth with the neighbour on: an entry exactly when the pixels differ from
  ours off (neighbour on).
Neighbour on vs off compares the generated batch only (a neighbour may add images: ControlNet's map,
LayerDiffuse's RGBA output), as RGB.  One matrix line per case (SLOTHFUL_E2E_MATRIX).
"""
import pytest

from .client import main_images, mean_diff, ours, same, with_scripts
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
    n = int(base.get("batch_size", 1))

    def gen(neighbour_on, ours_on, what):
        payload = webui.payload(**base, **(fields if neighbour_on else {}))
        payload = with_scripts(payload, scripts if neighbour_on else {}, ours(METHODS[method]) if ours_on else {})
        try:
            return webui.txt2img(payload, what=f"{name} {'on' if neighbour_on else 'off'}, {what}")
        finally:
            if neighbour_on:
                restore(webui, spec, saved)

    def main(r):
        return main_images(r, n)

    def record(**kw):
        matrix.write(neighbour=name, method=method, **kw)

    n_off_o_off = gen(False, False, "ours off")
    n_on_o_off = gen(True, False, "ours off")
    for what, r in (("neighbour off, ours off", n_off_o_off), ("neighbour on, ours off", n_on_o_off)):
        assert r.ok, f"{name}, {what}: HTTP {r.status}: {r.short()}"
    alone = mean_diff(main(n_on_o_off), main(n_off_o_off))
    if same(main(n_on_o_off), main(n_off_o_off)):
        record(status=None, ours_diff=None, neighbour_diff=None, neighbour_alone_diff=alone, entry=None, truth=None,
               note="neighbour changes nothing by itself here")
        pytest.skip(f"{name} changes nothing by itself on {webui.model} at {webui.width}x{webui.height}")

    n_off_o_on = gen(False, True, f"{method} on")
    n_on_o_on = gen(True, True, f"{method} on")
    ok = n_off_o_on.ok and n_on_o_on.ok
    record(status=n_on_o_on.status,
           ours_diff=mean_diff(n_on_o_on, n_on_o_off) if ok else None,
           neighbour_diff=mean_diff(main(n_on_o_on), main(n_off_o_on)) if ok else None,
           neighbour_alone_diff=alone,
           entry=(n_on_o_on.entry() is not None) if n_on_o_on.ok else None,
           truth=((n_on_o_on.entry() is not None) == (not same(n_on_o_on, n_on_o_off))) if ok else None,
           error=None if n_on_o_on.ok else n_on_o_on.short(300))

    assert n_off_o_on.ok, f"{method} alone: HTTP {n_off_o_on.status}: {n_off_o_on.short()}"
    assert n_on_o_on.ok, f"{name} + {method}: HTTP {n_on_o_on.status}: {n_on_o_on.short()}"
    assert not same(main(n_on_o_on), main(n_off_o_on)), (
        f"{name} no longer acts with {method} on (neighbour on vs off, ours on: identical; "
        f"{name} alone {diff_text(main(n_on_o_off), main(n_off_o_off))})")
    assert_truth(n_on_o_on, n_on_o_off, f"{method} with {name} on")
