"""Run by the WebUI at start-up (unless --skip-install).  Nothing to install: the extension uses
only torch and gradio, which every supported WebUI ships.  This only says so if they are missing."""
import importlib.util

missing = [m for m in ("torch", "gradio") if importlib.util.find_spec(m) is None]
if missing:
    print(f"[Slothful Attention] this WebUI lacks {', '.join(missing)}; the extension will not load")
