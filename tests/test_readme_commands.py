"""Every fenced ``bash`` command in README.md runs, in order, in one scratch folder, on tiny data.

A line ending in ``# not run: REASON`` is skipped and must give its reason (set-up that creates a venv,
a GUI, a server that runs until stopped, a placeholder path). Sizes are shrunk so the whole README runs
in a minute or two: bag counts, epochs and network width are rewritten (``TINY``); everything else —
flags, file names, the order — is the README's own. A command that fails names itself and its output.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NOT_RUN = re.compile(r"#\s*not run:\s*(.*)$")
# command -> {flag: tiny value}: the README shows realistic sizes, the test needs seconds
TINY = {("synth",): {"--benign": "3", "--threat": "2", "--width": "300"},
        ("train",): {"--epochs": "1", "--ngf": "8"},
        ("tip", "build"): {"--per-category": "1"}}


def fenced_commands(text: str) -> list[tuple[str, str | None]]:
    """(command, reason-not-run or None) for every line of every ```bash block; continuation
    backslashes joined, comments after the command kept only for the not-run marker."""
    out: list[tuple[str, str | None]] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            marker = NOT_RUN.search(line)
            command = line.split(" #", 1)[0].strip()
            out.append((command, marker.group(1).strip() if marker else None))
    return out


def shrink(command: str) -> list[str]:
    words = shlex.split(command)
    tiny = next((t for sub, t in TINY.items() if tuple(words[1:1 + len(sub)]) == sub), {})
    for i, word in enumerate(words[:-1]):
        if word in tiny:
            words[i + 1] = tiny[word]
    return words


def test_every_readme_command_runs_or_says_why_not(tmp_path):
    commands = fenced_commands(README.read_text(encoding="utf-8"))
    assert len(commands) >= 10, "the README lost its commands"
    for target in ("resources", "models"):
        (tmp_path / target).symlink_to(ROOT / target)
    env = dict(os.environ, XSCREEN_HOME=str(tmp_path / "home"), QT_QPA_PLATFORM="offscreen",
               OMP_NUM_THREADS="1", PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    ran = 0
    for command, reason in commands:
        if reason is not None:
            assert len(reason) > 5, f"'{command}': a not-run marker needs its reason"
            continue
        words = shrink(command)
        assert words[0] in ("xscreen", "python"), f"'{command}': run xscreen or python, or mark it not run"
        if words[0] == "python":
            words[0] = sys.executable
        proc = subprocess.run(words, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"README command failed ({proc.returncode}): {command}\n" \
                                     f"{(proc.stdout + proc.stderr)[-3000:]}"
        ran += 1
    assert ran >= 8


def test_readme_and_results_page_stay_short():
    """Issue 34: a site's path in at most 350 lines; the results page at most 600."""
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 350
    assert len((ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8").splitlines()) <= 600


def test_shrink_rewrites_sizes_only():
    assert shrink("xscreen synth bags/ --benign 200 --threat 50 --seed 0") == \
        ["xscreen", "synth", "bags/", "--benign", "3", "--threat", "2", "--seed", "0"]
    assert shrink("xscreen evaluate --benign data/b --out e") == ["xscreen", "evaluate", "--benign", "data/b", "--out", "e"]


def test_not_run_markers_are_parsed_with_their_reason():
    cmds = fenced_commands("```bash\nxscreen gui   # not run: needs a display\nxscreen demo --out d\n```\n")
    assert cmds == [("xscreen gui", "needs a display"), ("xscreen demo --out d", None)]
