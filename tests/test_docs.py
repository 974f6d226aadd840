"""The documentation stays true to the repository.

* every relative link and picture in README.md, docs/*.md and configs/det/README.md points to a file that
  exists (and, into a Markdown page, to a heading that exists);
* every ``bash scripts/NAME.sh`` and ``python tools|benchmarks/NAME.py`` command in README.md's code blocks
  names a file that exists, and every ``--long-option`` it uses is one that script's ``--help`` lists;
* the generated part of docs/config.md matches the code (``docs/gen_config_reference.py --check``);
* README.md stays a front page (at most 220 lines) that links every page under docs/.
"""
from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, ROOT / "configs" / "det" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
HELP_TIMEOUT = 120

FENCE = re.compile(r"^(```|~~~)[^\n]*\n.*?^\1[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`+[^`\n]*`+")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
COMMAND_LINE = re.compile(r"\b(?:bash|sh)\s+\S+\.sh\b|\bpython3?\s+(?:-m\s+\S+\s+.*?)?(?:tools|benchmarks)/")
LONG_OPTION = re.compile(r"^--[A-Za-z][\w-]*")
SEPARATORS = {"&&", "||", ";", "|", "&"}


def _page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code (links there are not links)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@functools.lru_cache(maxsize=None)
def _anchors(path: Path) -> Set[str]:
    seen: Dict[str, int] = {}
    out = set()
    for match in HEADING.finditer(FENCE.sub("", path.read_text(encoding="utf-8"))):
        slug = _slug(match.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _relative_links(path: Path) -> List[str]:
    targets = LINK.findall(_prose(path.read_text(encoding="utf-8")))
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I)]  # http:, https:, mailto:


def test_pages_exist():
    for page in PAGES:
        assert page.is_file(), f"{_page_id(page)} is missing"
    names = {p.name for p in PAGES}
    for name in ("training.md", "config.md", "evaluation.md", "performance.md", "asf.md", "setup.md",
                 "finetune_own_images.md", "deploy.md"):
        assert name in names, f"docs/{name} is missing"


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_relative_links_point_to_existing_files(page: Path):
    broken = []
    for target in _relative_links(page):
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target} (no file {dest})")
        elif anchor and dest.suffix == ".md" and anchor.lower() not in _anchors(dest):
            broken.append(f"{target} (no heading with anchor #{anchor} in {_page_id(dest)})")
    assert not broken, f"{_page_id(page)}: broken links:\n  " + "\n  ".join(broken)


def _code_blocks(text: str) -> List[str]:
    return [m.group(0).split("\n", 1)[1].rsplit("\n", 1)[0] for m in FENCE.finditer(text)]


def _logical_lines(block: str) -> List[str]:
    """The block's lines with backslash continuations joined."""
    out, current = [], ""
    for line in block.split("\n"):
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
        else:
            out.append(current + line)
            current = ""
    if current:
        out.append(current)
    return out


def _tokens(line: str) -> List[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote in a shown output line
        return line.split("#", 1)[0].split()


def _segments(tokens: List[str]) -> List[List[str]]:
    segments, current = [], []
    for tok in tokens:
        if tok in SEPARATORS:
            segments.append(current)
            current = []
        else:
            current.append(tok)
    segments.append(current)
    return [s for s in segments if s]


def readme_commands() -> List[Tuple[str, str, List[str], str]]:
    """``(kind, script, long options, the command line)`` for each command in README.md's code blocks;
    kind is ``bash`` or ``python``."""
    found = []
    for block in _code_blocks(README.read_text(encoding="utf-8")):
        for line in _logical_lines(block):
            if not COMMAND_LINE.search(line):
                continue
            for seg in _segments(_tokens(line)):
                # allow leading VAR=value assignments
                i = 0
                while i < len(seg) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", seg[i]):
                    i += 1
                if i >= len(seg):
                    continue
                head, rest = seg[i], seg[i + 1:]
                if head in ("bash", "sh") and rest and rest[0].endswith(".sh"):
                    script, args = rest[0], rest[1:]
                    kind = "bash"
                elif re.match(r"^python3?$", head):
                    idx = next((k for k, t in enumerate(rest) if re.match(r"^(tools|benchmarks)/[\w.-]+\.py$", t)),
                               None)
                    if idx is None:
                        continue
                    script, args = rest[idx], rest[idx + 1:]
                    kind = "python"
                else:
                    continue
                options = [LONG_OPTION.match(a).group(0) for a in args if LONG_OPTION.match(a)]
                found.append((kind, script, options, line.strip()))
    return found


def test_readme_shows_the_main_commands():
    scripts = {script for _, script, _, _ in readme_commands()}
    for expected in ("scripts/train.sh", "scripts/test.sh", "scripts/eval.sh", "scripts/finetune.sh",
                     "scripts/prepare_icdar2015.sh", "tools/export_model.py"):
        assert expected in scripts, f"README.md code blocks no longer show {expected} (parser or README changed)"


def test_readme_commands_name_existing_files():
    missing = [f"{script}  (in: {line})" for _, script, _, line in readme_commands()
               if not (ROOT / script).is_file()]
    assert not missing, "README.md shows commands for files that do not exist:\n  " + "\n  ".join(missing)


def _help_env() -> Dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHON", sys.executable)  # scripts/*.sh run their Python from $PYTHON
    venv = Path(sys.executable).parent.parent
    if "VENV" not in env and (venv / "bin" / "python").exists():
        env["VENV"] = str(venv)
    return env


@functools.lru_cache(maxsize=None)
def _help_text(kind: str, script: str) -> str:
    cmd = [sys.executable, script, "--help"] if kind == "python" else ["bash", script, "--help"]
    proc = subprocess.run(cmd, cwd=ROOT, env=_help_env(), capture_output=True, text=True, timeout=HELP_TIMEOUT)
    assert proc.returncode == 0, (f"`{' '.join(cmd)}` exited {proc.returncode}:\n"
                                  f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout + proc.stderr


def test_readme_long_options_appear_in_help():
    """Each tools/ and benchmarks/ script shown runs ``--help`` once (as does each scripts/*.sh given a long
    option); every ``--option`` the README passes it must be listed there."""
    wanted: Dict[Tuple[str, str], Set[str]] = {}
    for kind, script, options, _ in readme_commands():
        if not (ROOT / script).is_file():
            continue  # reported by test_readme_commands_name_existing_files
        if kind == "python" or (options and script.startswith("scripts/")):
            wanted.setdefault((kind, script), set()).update(options)
    assert wanted, "no command to check: the README parser found nothing"
    problems = []
    for (kind, script), options in sorted(wanted.items()):
        text = _help_text(kind, script)
        for opt in sorted(options):
            if not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", text):
                problems.append(f"{script}: {opt} is not in its --help")
    assert not problems, "README.md uses options the scripts do not list:\n  " + "\n  ".join(problems)


def test_readme_launcher_commands_plan_without_error(tmp_path):
    """Every ``bash scripts/train.sh`` / ``scripts/eval.sh`` command the README shows, run with ``--dry-run``
    on this machine: its arguments parse, its config validates and it prints the command it would run."""
    ran = 0
    for _, script, _, line in readme_commands():
        if script not in ("scripts/train.sh", "scripts/eval.sh"):
            continue
        seg = next(s for s in _segments(_tokens(line)) if script in s)
        args = seg[seg.index(script) + 1:]
        cmd = ["bash", script, *args, *([] if "--dry-run" in args else ["--dry-run"])]
        proc = subprocess.run(cmd, cwd=ROOT, env=_help_env(), capture_output=True, text=True, timeout=HELP_TIMEOUT)
        assert proc.returncode == 0 and "would run" in proc.stdout, (line, proc.stdout[-2000:], proc.stderr[-2000:])
        ran += 1
    assert ran >= 3, "the README shows fewer train.sh / eval.sh commands than expected (parser or README changed)"


def test_generated_config_reference_is_up_to_date():
    proc = subprocess.run([sys.executable, "docs/gen_config_reference.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=HELP_TIMEOUT)
    assert proc.returncode == 0, (f"docs/config.md is stale (run .venv/bin/python docs/gen_config_reference.py):\n"
                                  f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def test_readme_is_a_front_page():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= 220, f"README.md has {lines} lines; move details to docs/ (at most 220)"


def test_readme_links_every_doc_page():
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in _relative_links(README)}
    unlinked = [_page_id(p) for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not unlinked, f"README.md does not link: {', '.join(unlinked)}"
