"""Slothful Attention / Near-sighted Tile / Near-sighted Attention: the WebUI's AlwaysOn script.

Thin on purpose: the UI comes from the parameter table (lib_slothful/ui.py), the generation's
life from lib_slothful/controller.py with the host adapter chosen by lib_slothful/hosts, and the
X/Y/Z axes from lib_slothful/xyz.py; the tests exercise all of them without a WebUI.
"""
import os

import gradio as gr

from modules import script_callbacks, scripts, shared
from modules.ui_components import InputAccordion  # A1111 1.7+, Forge, reForge

# The WebUI puts this extension's folder on sys.path while its scripts load; everything the script
# needs is imported here, so nothing is added to sys.path for the rest of the session.
from lib_slothful import xyz
from lib_slothful.controller import TITLE, Controller
from lib_slothful import hosts
from lib_slothful.ui import build_ui, infotext_fields


def _disabled():
    return bool(getattr(shared.cmd_opts, "disable_slothful_attention", False))


CONTROLLER = Controller(hosts.host_for, current_model=lambda: shared.sd_model,
                        layout_of=lambda p: hosts.layout_of(getattr(p, "sd_model", None) or shared.sd_model))
_EVERY_SAMPLING = hasattr(scripts.Script, "process_before_every_sampling")  # A1111 1.10+, Forge, reForge
_SIZE = {}  # elem_id -> the tab's width / height sliders, for the preview


def _ensure_temp_dir():
    """Forge Neo saves every image output that is not a saved file into opts.temp_dir (default webui/tmp)
    without creating that folder; on a fresh clone the preview picture then fails (FileNotFoundError in
    gradio's postprocess) and the picture and caption stay blank.  Create the folder the host names."""
    folder = getattr(shared.opts, "temp_dir", "") or ""
    if folder:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError:
            pass


class SlothfulAttentionScript(scripts.Script):
    sorting_priority = 15  # Forge: place among the built-in accordions

    def title(self):
        return TITLE

    def show(self, is_img2img):
        return False if _disabled() else scripts.AlwaysVisible

    def ui(self, is_img2img):
        tab = "img2img" if is_img2img else "txt2img"
        size = [_SIZE.get(f"{tab}_width"), _SIZE.get(f"{tab}_height")]
        size = size if None not in size else []
        _ensure_temp_dir()
        controls, _ = build_ui(gr, InputAccordion, self.elem_id, layout_fn=lambda: hosts.layout_of(shared.sd_model),
                               size_inputs=size)
        self.infotext_fields = infotext_fields(controls)
        return controls

    def process(self, p, *args):
        CONTROLLER.process(p, args)

    def process_batch(self, p, *args, **kwargs):
        # WebUIs before A1111 1.10 have no process_before_every_sampling: install here instead.  Where
        # it exists, installing here too would be wasted (Forge resets its patcher after this hook)
        # and would run before extensions that patch in process_before_every_sampling (LayerDiffuse).
        if not _EVERY_SAMPLING:
            CONTROLLER.before_sampling(p)

    def process_before_every_sampling(self, p, *args, **kwargs):
        CONTROLLER.before_sampling(p)

    def postprocess_batch(self, p, *args, **kwargs):
        CONTROLLER.postprocess_batch(p)  # before the batch's infotexts are made

    def postprocess(self, p, processed, *args):
        CONTROLLER.postprocess(p)


def _remember_size(component, **kwargs):
    elem_id = kwargs.get("elem_id")
    if elem_id in ("txt2img_width", "txt2img_height", "img2img_width", "img2img_height"):
        _SIZE[elem_id] = component


def _add_xyz_axes():
    if _disabled():
        return
    for data in scripts.scripts_data:
        if data.script_class.__module__ in ("xyz_grid.py", "scripts.xyz_grid"):
            xyz.add_axes(data.module)


script_callbacks.on_after_component(_remember_size)
script_callbacks.on_cfg_denoiser(CONTROLLER.on_cfg_denoiser)
script_callbacks.on_before_ui(_add_xyz_axes)
_add_xyz_axes()  # already possible when xyz_grid.py loaded first; needed with --nowebui (no before_ui)
