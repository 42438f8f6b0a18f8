"""Bench shim: defines torchvision::nms/qnms when torchvision's compiled extension cannot load.

Installed by the bench (lib.sh tv_shim) into the venv's site-packages as `_bench_tv_shim.py`, with
`_bench_tv_shim.pth` (one line: `import _bench_tv_shim`), so it runs at every interpreter start.

Why: torchvision 0.28.0 from PyPI is a CUDA build; its _C.so needs libtorch_cuda.so, which the CPU torch
lacks, so `import torchvision` fails with "operator torchvision::nms does not exist". This module only puts a
meta-path finder in front of the others. The first time torchvision is imported, the finder tries to load
torchvision's _C.so and, if that fails, defines the torchvision::nms / qnms schemas with a pure-torch CPU
kernel. Nothing (not even torch) is imported before that, so pip and other tools stay fast.
torchvision.ops.nms() itself still refuses (it asserts the compiled extension); the webui never calls it.
"""
import sys

_LIB = None


def _nms(dets, scores, iou_threshold):
    import torch
    if dets.numel() == 0:
        return torch.empty((0,), dtype=torch.long, device=dets.device)
    x1, y1, x2, y2 = dets.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort(descending=True)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(int(i))
        if order.numel() == 1:
            break
        rest = order[1:]
        xx1 = torch.maximum(x1[rest], x1[i]); yy1 = torch.maximum(y1[rest], y1[i])
        xx2 = torch.minimum(x2[rest], x2[i]); yy2 = torch.minimum(y2[rest], y2[i])
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[iou <= iou_threshold]
    return torch.tensor(keep, dtype=torch.long, device=dets.device)


def _install(pkg_dirs):
    global _LIB
    import glob
    import os
    import torch
    for d in pkg_dirs:
        for so in glob.glob(os.path.join(d, "_C*.so")):
            try:
                torch.ops.load_library(so)
                return  # the real extension loads: nothing to do
            except Exception:  # noqa: BLE001
                pass
    try:
        torch.ops.torchvision.nms  # already defined by someone
        return
    except (AttributeError, RuntimeError):
        pass
    _LIB = torch.library.Library("torchvision", "DEF")
    for name in ("nms", "qnms"):
        _LIB.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _LIB.impl(name, _nms, "CPU")


class _Finder:
    done = False

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != "torchvision" or cls.done:
            return None
        cls.done = True
        from importlib.machinery import PathFinder
        spec = PathFinder.find_spec(fullname, path)
        if spec is not None and spec.submodule_search_locations:
            try:
                _install(list(spec.submodule_search_locations))
            except Exception as e:  # noqa: BLE001
                print(f"[bench tv shim] {e!r}", file=sys.stderr)
        return None


if not any(isinstance(f, type) and f.__name__ == "_Finder" for f in sys.meta_path):
    sys.meta_path.insert(0, _Finder)
