"""docs/editors.svg, a real editor's screen: Debian's Neovim in tmux with
editors/neovim/archc.lua on nets/googlenet.arch, `archc lsp`'s inlay hints at the line ends
and the hover of `3a`; the terminal's cells, as tmux captures them, drawn to SVG by rich.

    .venv/bin/pip install rich && .venv/bin/python docs/editor_screenshot.py

Needs nvim and tmux (Debian: apt-get install neovim tmux).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.text import Text

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 172, 27


def main() -> None:
    settings = json.dumps([sys.executable, str(ROOT)])
    command = (f"nvim -n -u NONE --cmd 'let g:archc_screenshot = {settings}' "
               f"-c 'luafile {ROOT / 'docs/editor_screenshot.lua'}'")
    subprocess.run(["tmux", "kill-session", "-t", "archc-shot"], capture_output=True)
    subprocess.run(["tmux", "new-session", "-d", "-s", "archc-shot", "-x", str(WIDTH), "-y",
                    str(HEIGHT), command], check=True, env={"TERM": "xterm-256color",
                                                             "PATH": "/usr/bin:/bin"})
    time.sleep(8)  # the server starts, analyses, answers the hints and the hover
    screen = subprocess.run(["tmux", "capture-pane", "-p", "-e", "-t", "archc-shot"],
                            check=True, capture_output=True, text=True).stdout
    subprocess.run(["tmux", "kill-session", "-t", "archc-shot"], capture_output=True)
    console = Console(record=True, width=WIDTH, force_terminal=True, color_system="truecolor",
                      file=io.StringIO())  # recorded, not echoed
    console.print(Text.from_ansi(_plain(screen.rstrip("\n"))), soft_wrap=True)
    target = ROOT / "docs/editors.svg"
    target.write_text(console.export_svg(title="nvim nets/googlenet.arch · archc lsp"))
    print(f"wrote {target}")


NORMAL = "38;2;212;212;212;48;2;30;30;30"  # Normal's colours in docs/editor_screenshot.lua


def _plain(ansi: str) -> str:
    """tmux writes the terminal's default colours (39, 49, a reset) where Neovim's Normal
    is; rich would draw those in its own: give them Normal's."""
    return ansi.replace("\x1b[0m", f"\x1b[0;{NORMAL}m").replace("39;49", NORMAL) \
        .replace(";39;", ";38;2;212;212;212;").replace("[39;", "[38;2;212;212;212;") \
        .replace(";49m", ";48;2;30;30;30m")


if __name__ == "__main__":
    main()
