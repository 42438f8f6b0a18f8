"""Generated files stay in sync with the parameter table."""
import subprocess
import sys

from conftest import ROOT


def test_readme_reference_and_hover_help_are_generated_from_the_table():
    r = subprocess.run([sys.executable, "tools/gen_docs.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_parameter_has_help_and_a_reference_row():
    from lib_slothful.params import PARAMS

    readme = open(f"{ROOT}/README.md", encoding="utf-8").read()
    js = open(f"{ROOT}/javascript/slothful_attention.js", encoding="utf-8").read()
    for p in PARAMS:
        assert len(p.help) > 20, p.key
        assert f"| `{p.key}` |" in readme
        assert f'"{p.key}":' in js
