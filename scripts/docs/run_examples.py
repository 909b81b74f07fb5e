#!/usr/bin/env python3
"""Run the documentation's runnable examples: every ```bash block in README.md and
docs/**/*.md whose line above is exactly `<!-- runnable -->`.

    .venv/bin/python scripts/docs/run_examples.py [--binary build/attnlab] [--max-steps 20]
                                                  [--timeout 300] [--list] [--keep] [FILE.md ...]

Marking an example (for whoever writes the docs):

    <!-- runnable -->
    ```bash
    attnlab train run.dir=runs/demo
    attnlab eval run_dir=runs/demo
    ```

How a block runs:
  * in a fresh temporary directory (so relative paths such as runs/ land there), holding links
    to the repository's configs/, scripts/ and experiments/ and to the binary's folder as
    build/ (so `build/attnlab` and `scripts/...` work as they do in the repository root);
  * as one bash script, lines in order, with `set -euo pipefail`: the first failing command
    (or pipeline) fails the block;
  * with `attnlab` resolved to the built binary (its folder first on PATH; --binary);
  * with the environment the tests use: ATTNLAB_SOURCE_DIR = the repository (so missing corpora
    are fetched by its scripts/fetch_data.sh into the usual data cache: data.cache_dir, else
    $ATTNLAB_DATA, else $XDG_CACHE_HOME/attnlab or ~/.cache/attnlab, shared with the tests),
    ATTNLAB_CONFIG_DIR = the repository's configs/, ATTNLAB_CONFIG_PATH unset, and
    ATTNLAB_PYTHON = the repository's .venv/bin/python when it exists;
  * **tiny preset**: every `attnlab train` command gets ` experiment=tiny` and
    ` trainer.max_steps=<--max-steps, default 20>` appended, each only when the command does
    not set that key already. So an example may show a real training command and still run in
    seconds; one that sets experiment= or trainer.max_steps= itself keeps its own values.
  * within --timeout seconds (default 300); the whole process group is killed after that.

A failing block is reported with the file and line of the block, the line of the command that
failed, and the tail of its output (stdout and stderr). The exit code is 1 when a block fails
and also when there is no runnable example at all (a docs test that runs nothing must not pass),
0 when every block passed. --list prints the blocks as they would run, without running them.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARKER = "<!-- runnable -->"
LINKED = ("configs", "scripts", "experiments")
TAIL_LINES = 40
TRAIN = re.compile(r"""(?:^|(?<=[\s;&|(/"'`]))attnlab["']?[ \t]+(?:\\\n[ \t]*)*train(?=\s|$)""")


class Block:
    def __init__(self, path, marker_line, fence_line, lines):
        self.path = path                # relative to the root
        self.marker_line = marker_line  # 1-based line of <!-- runnable -->
        self.fence_line = fence_line    # 1-based line of ```bash
        self.lines = lines              # the block's lines

    @property
    def where(self):
        return f"{self.path}:{self.fence_line}"


def find_blocks(root, rel):
    """(blocks, problems) of one markdown file."""
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        lines = f.read().split("\n")
    blocks, problems, i = [], [], 0
    fence = None
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^\s{0,3}(`{3,}|~{3,})", line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            i += 1
            continue
        if line.strip() == MARKER:
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            start = re.match(r"^\s{0,3}(`{3,})\s*bash\s*$", nxt)
            if not start:
                problems.append(f"{rel}:{i + 1}: {MARKER} is not followed by a ```bash block")
                i += 1
                continue
            body, j = [], i + 2
            closer = start.group(1)
            while j < len(lines) and not (lines[j].strip().startswith(closer)
                                          and lines[j].strip().strip("`") == ""):
                body.append(lines[j])
                j += 1
            if j == len(lines):
                problems.append(f"{rel}:{i + 2}: the ```bash block is not closed")
                break
            blocks.append(Block(rel, i + 1, i + 2, body))
            i = j + 1
            continue
        if m:
            fence = m.group(1)
        i += 1
    return blocks, problems


def command_end(text, start):
    """Where the shell command that starts at `start` ends: the first unquoted ; & | < > ) or
    comment, else the end of the text (backslash-newlines continue the command)."""
    quote, i = None, start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch == "\\":
            i += 2
            continue
        elif ch in "'\"":
            quote = ch
        elif ch in ";&|<>)\n":
            return i
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return i
        i += 1
    return len(text)


def sets_key(command, key):
    return re.search(r"(?:^|\s)\+{0,2}" + re.escape(key) + r"=", command) is not None


def apply_tiny_preset(script, max_steps):
    """The script with ` experiment=tiny trainer.max_steps=N` appended to every `attnlab
    train` command that does not set those keys (line count unchanged)."""
    out, pos = [], 0
    for m in TRAIN.finditer(script):
        if m.start() < pos:
            continue
        end = command_end(script, m.end())
        command = script[m.start():end]
        extra = []
        if not sets_key(command, "experiment"):
            extra.append("experiment=tiny")
        if not sets_key(command, "trainer.max_steps"):
            extra.append(f"trainer.max_steps={max_steps}")
        if not extra:
            continue
        stripped = command.rstrip()
        if script[end:end + 1] in ("<", ">"):  # `cmd 2>err`: the fd number is not an argument
            stripped = re.sub(r"\s\d+$", "", stripped).rstrip()
        insert_at = m.start() + len(stripped)
        if stripped.endswith("\\"):  # a dangling continuation: insert before it
            insert_at -= 1
        out.append(script[pos:insert_at])
        out.append(("" if script[insert_at - 1:insert_at] in (" ", "") else " ")
                   + " ".join(extra) + (" " if stripped.endswith("\\") else ""))
        pos = insert_at
    out.append(script[pos:])
    return "".join(out)


def block_script(block, max_steps):
    """The bash script of a block: a 3-line header, then the block's lines (tiny preset
    applied). The ERR trap names the failing command's line in the markdown file."""
    body = apply_tiny_preset("\n".join(block.lines), max_steps)
    header = [
        f"BASE={block.fence_line - 3}",  # script line 3 + k is block line k = file line fence + k
        "set -euo pipefail",
        f"trap 'rc=$?; echo \"runnable example failed at {block.path}:$((LINENO + BASE)) "
        "(exit $rc): $BASH_COMMAND\" >&2' ERR",
    ]
    return "\n".join(header) + "\n" + body + "\n"


def environment(binary_dir):
    env = dict(os.environ)
    env["PATH"] = binary_dir + os.pathsep + env.get("PATH", "")
    env["ATTNLAB_SOURCE_DIR"] = REPO
    env["ATTNLAB_CONFIG_DIR"] = os.path.join(REPO, "configs")
    env.pop("ATTNLAB_CONFIG_PATH", None)
    python = os.path.join(REPO, ".venv", "bin", "python")
    if os.path.exists(python):
        env.setdefault("ATTNLAB_PYTHON", python)
    return env


def prepare_workdir(binary_dir):
    work = tempfile.mkdtemp(prefix="attnlab-example-")
    for name in LINKED:
        if os.path.exists(os.path.join(REPO, name)):
            os.symlink(os.path.join(REPO, name), os.path.join(work, name))
    os.symlink(binary_dir, os.path.join(work, "build"))
    return work


def run_block(block, args, binary_dir):
    """(ok, seconds, output, workdir)."""
    work = prepare_workdir(binary_dir)
    script = os.path.join(work, ".example.sh")
    with open(script, "w", encoding="utf-8") as f:
        f.write(block_script(block, args.max_steps))
    start = time.monotonic()
    process = subprocess.Popen(["bash", script], cwd=work, env=environment(binary_dir),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=args.timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        timed_out = True
    seconds = time.monotonic() - start
    text = output.decode("utf-8", "replace")
    if timed_out:
        text += f"\nrunnable example timed out after {args.timeout} s ({block.where})\n"
    ok = process.returncode == 0 and not timed_out
    if ok and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return ok, seconds, text, work


def default_files(root):
    files = ["README.md"] if os.path.exists(os.path.join(root, "README.md")) else []
    for base, dirs, names in os.walk(os.path.join(root, "docs")):
        dirs.sort()
        for name in sorted(names):
            if name.endswith(".md"):
                files.append(os.path.relpath(os.path.join(base, name), root).replace(os.sep, "/"))
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*",
                        help="markdown files (default: README.md and docs/**/*.md)")
    parser.add_argument("--binary", default=os.path.join(REPO, "build", "attnlab"),
                        help="the attnlab binary (default: build/attnlab)")
    parser.add_argument("--max-steps", type=int, default=20,
                        help="trainer.max_steps appended to `attnlab train` (default 20)")
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds per block (default 300)")
    parser.add_argument("--list", action="store_true", help="print the blocks; run nothing")
    parser.add_argument("--keep", action="store_true",
                        help="keep every block's temporary directory (failed ones are kept)")
    args = parser.parse_args(argv)

    def shown(path):  # relative to the repository when inside it
        rel = os.path.relpath(os.path.abspath(path), REPO)
        return os.path.abspath(path) if rel.startswith("..") else rel

    files = [shown(f) for f in args.files] if args.files else default_files(REPO)
    blocks, problems = [], []
    for rel in files:
        found, bad = find_blocks(REPO, rel)
        blocks += found
        problems += bad
    for p in problems:
        print(p)
    if problems:
        return 1
    if not blocks:
        print("no runnable examples (mark a ```bash block with a `<!-- runnable -->` line "
              "above it)")
        return 1
    if args.list:
        for block in blocks:
            print(f"--- {block.where}")
            print(block_script(block, args.max_steps), end="")
        return 0

    binary = os.path.abspath(args.binary)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print(f"{args.binary}: no attnlab binary (build it first: cmake --build build)")
        return 1
    binary_dir = os.path.dirname(binary)
    if os.path.basename(binary) != "attnlab":  # `attnlab` must name it on PATH
        binary_dir = tempfile.mkdtemp(prefix="attnlab-bin-")
        os.symlink(binary, os.path.join(binary_dir, "attnlab"))
    failed = 0
    for block in blocks:
        ok, seconds, output, work = run_block(block, args, binary_dir)
        if ok:
            print(f"ok      {block.where}  ({seconds:.1f} s)")
            continue
        failed += 1
        tail = output.rstrip("\n").split("\n")[-TAIL_LINES:]
        print(f"FAILED  {block.where}  ({seconds:.1f} s; kept {work})")
        print("        " + "\n        ".join(tail))
    print(f"{len(blocks) - failed} of {len(blocks)} runnable example(s) passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
