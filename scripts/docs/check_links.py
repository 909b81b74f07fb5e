#!/usr/bin/env python3
"""Check that every relative link and #anchor in README.md and docs/**/*.md resolves.

    .venv/bin/python scripts/docs/check_links.py [--root DIR] [FILE.md ...]

Checked (outside fenced code blocks and inline code): inline links and images `[t](target)`,
reference definitions `[id]: target`, and HTML `href="..."` / `src="..."`. External links
(http:, https:, mailto:, ...) are not fetched.

  * The file must exist in the repository: tracked by git, or new and not ignored (a link to
    an ignored file such as build/attnlab works locally but not on GitHub). Without git, it
    must exist on disk.
  * An #anchor must match a heading of the target markdown file (or an explicit id: `{#id}`,
    `<a id=...>`, `<a name=...>`). README.md is read on GitHub, so its links use GitHub's heading
    slugs; pages under docs/ are built by MkDocs, so theirs use the toc extension's slugs
    (Python-Markdown's `slugify`, or the one mkdocs.yml configures). Duplicate headings get
    GitHub's `-1`, `-2` / toc's `_1`, `_2` suffixes. `#L12` line anchors on non-markdown files
    are accepted.
  * A page under docs/ must not link outside docs/ (MkDocs cannot serve such files; link to the
    repository on GitHub instead) and must link to files, not folders.

Every broken link is printed as `file:line: target: reason`; the exit code is 1 when any link
is broken, 0 otherwise (2 on usage errors).
"""
import argparse
import html
import importlib
import os
import re
import subprocess
import sys
import unicodedata
from urllib.parse import unquote

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.\-]*:|//)")
FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
INLINE_LINK = re.compile(
    r"(?<!\\)!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]*(?:\([^()\s]*\)[^()\s<>]*)*)>?"
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[([^\]]+)\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML_ATTR = re.compile(r"""<(?:a|img|source)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""",
                       re.IGNORECASE)
HTML_ID = re.compile(r"""<[a-z]+\b[^>]*?\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
ATTR_LIST_ID = re.compile(r"\s*\{[^}]*#([\w\-:.]+)[^}]*\}\s*$")


# ----------------------------------------------------------------------------- markdown text


def strip_code_spans(line):
    """The line with inline code spans blanked (same length), so links inside are ignored."""
    out, i = [], 0
    while i < len(line):
        if line[i] == "`":
            run = len(line[i:]) - len(line[i:].lstrip("`"))
            end = line.find("`" * run, i + run)
            if end != -1:
                out.append(" " * (end + run - i))
                i = end + run
                continue
            out.append(line[i:i + run])
            i += run
            continue
        out.append(line[i])
        i += 1
    return "".join(out)


def prose_lines(text):
    """(line number, line) of the lines outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.split("\n"), 1):
        m = FENCE.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and \
                    not line.strip()[len(m.group(1)):].strip():
                fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        yield number, line


def heading_texts(text):
    """(raw heading text, explicit id or None) of every ATX / setext heading."""
    out, previous = [], None
    for _, line in prose_lines(text):
        m = re.match(r"^\s{0,3}(#{1,6})(?:\s+(.*?))?\s*$", line)
        if m:
            body = re.sub(r"\s+#+\s*$", "", m.group(2) or "")
            explicit = ATTR_LIST_ID.search(body)
            if explicit:
                body = body[:explicit.start()]
            out.append((body.strip(), explicit.group(1) if explicit else None))
            previous = None
            continue
        if previous and previous.strip() and re.match(r"^\s{0,3}(=+|-+)\s*$", line) \
                and not re.match(r"^\s{0,3}([-*_]\s*){3,}$", previous):
            out.append((previous.strip(), None))
            previous = None
            continue
        previous = line
    return out


def plain_text(heading):
    """A heading's rendered text: markup removed, code and link texts kept."""
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\[[^\]]*\]", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"(`+)(.*?)\1", lambda m: m.group(2).strip(), text)
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", text)
    text = re.sub(r"(?<!\w)_(?!\s)(.+?)(?<!\s)_(?!\w)", r"\1", text)
    return html.unescape(text)


# ----------------------------------------------------------------------------- slugs


def github_slug(text):
    """GitHub's heading id (github-slugger): lower case; letters, digits, marks, '-' and '_'
    kept; each space becomes '-'; everything else dropped."""
    out = []
    for ch in plain_text(text).lower():
        if ch == " ":
            out.append("-")
        elif ch in "-_" or unicodedata.category(ch)[0] in "LMN":
            out.append(ch)
    return "".join(out)


def toc_slug_default(value, separator="-"):
    """Python-Markdown's toc.slugify (used when the markdown package is not installed)."""
    value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value).strip().lower()
    return re.sub(r"[{}\s]+".format(re.escape(separator)), separator, value)


def toc_slugify_setting(config_path):
    """(dotted function name, kwds, is_factory) of mkdocs.yml's toc `slugify`, or None."""
    try:
        import yaml
    except ImportError:
        return None

    class Loader(yaml.SafeLoader):
        pass

    def python_name(loader, suffix, node):
        return ("name", suffix, {})

    def python_apply(loader, suffix, node):
        kwds = {}
        if isinstance(node, yaml.MappingNode):
            kwds = loader.construct_mapping(node, deep=True).get("kwds", {}) or {}
        return ("apply", suffix, kwds)

    def anything(loader, suffix, node):
        return None

    Loader.add_multi_constructor("tag:yaml.org,2002:python/name:", python_name)
    Loader.add_multi_constructor("tag:yaml.org,2002:python/object/apply:", python_apply)
    Loader.add_multi_constructor("!", anything)
    try:
        with open(config_path, encoding="utf-8") as f:
            config = yaml.load(f, Loader=Loader) or {}
    except (OSError, yaml.YAMLError):
        return None
    for extension in config.get("markdown_extensions") or []:
        if isinstance(extension, dict) and isinstance(extension.get("toc"), dict):
            setting = extension["toc"].get("slugify")
            if isinstance(setting, tuple):
                return setting[1], setting[2], setting[0] == "apply"
    return None


def mkdocs_slugifier(root):
    """The toc slugify function mkdocs.yml configures (default: Python-Markdown's)."""
    try:
        from markdown.extensions.toc import slugify as function
    except ImportError:
        function = toc_slug_default
    setting = toc_slugify_setting(os.path.join(root, "mkdocs.yml"))
    if setting:
        name, kwds, factory = setting
        module, _, attribute = name.rpartition(".")
        try:
            configured = getattr(importlib.import_module(module), attribute)
            function = configured(**kwds) if factory else configured
        except (ImportError, AttributeError, TypeError) as e:
            print(f"warning: mkdocs.yml's toc slugify {name} is unavailable ({e}); "
                  "using Python-Markdown's", file=sys.stderr)
    return lambda text: function(plain_text(text), "-")


def anchors(path, slugify, github):
    """Every anchor a markdown file offers under the given slug style."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    found, seen = set(), {}
    for heading, explicit in heading_texts(text):
        if explicit:
            found.add(explicit)
            continue
        slug = slugify(heading)
        if slug in seen:
            seen[slug] += 1
            slug = f"{slug}-{seen[slug]}" if github else f"{slug}_{seen[slug]}"
        else:
            seen[slug] = 0
        found.add(slug)
    for _, line in prose_lines(text):
        found.update(HTML_ID.findall(line))
    return found


# ----------------------------------------------------------------------------- repository


def repository_files(root):
    """Paths (relative, '/'-separated) git tracks or would track; None without git."""
    try:
        result = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], cwd=root, capture_output=True,
                                check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    files = {p for p in result.stdout.decode("utf-8", "replace").split("\0") if p}
    return {f for f in files if os.path.exists(os.path.join(root, f))}


class Repository:
    def __init__(self, root):
        self.root = root
        self.files = repository_files(root)
        self.dirs = set()
        if self.files is not None:
            for f in self.files:
                parts = f.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    self.dirs.add("/".join(parts[:i]))

    def kind(self, rel):
        """'file', 'dir', 'ignored' or None for a path relative to the root."""
        rel = os.path.normpath(rel).replace(os.sep, "/")
        if rel == ".":
            return "dir"
        if self.files is None:
            full = os.path.join(self.root, rel)
            return "dir" if os.path.isdir(full) else "file" if os.path.exists(full) else None
        if rel in self.files:
            return "file"
        if rel in self.dirs:
            return "dir"
        return "ignored" if os.path.exists(os.path.join(self.root, rel)) else None


# ----------------------------------------------------------------------------- checking


def links_of(text):
    """(line number, target) of every link in the markdown text."""
    for number, line in prose_lines(text):
        prose = strip_code_spans(line)
        for m in INLINE_LINK.finditer(prose):
            yield number, m.group(1)
        m = REF_DEF.match(prose)
        if m and not m.group(1).startswith("^"):
            yield number, m.group(2)
        for m in HTML_ATTR.finditer(prose):
            yield number, m.group(1)


def check_file(rel, repo, slug_cache, mkdocs_slug):
    """Messages for the broken links of one markdown file (relative to the root)."""
    in_docs = rel.split("/")[0] == "docs"
    with open(os.path.join(repo.root, rel), encoding="utf-8") as f:
        text = f.read()
    problems, count = [], 0
    for number, target in links_of(text):
        if not target or EXTERNAL.match(target):
            continue
        count += 1
        path, _, anchor = target.partition("#")
        path = unquote(path.split("?")[0])
        anchor = unquote(anchor)
        where = f"{rel}:{number}: {target}"
        if path.startswith("/"):
            if in_docs:
                problems.append(f"{where}: absolute path; MkDocs pages need relative links")
                continue
            resolved = path.lstrip("/")
        else:
            resolved = os.path.normpath(os.path.join(os.path.dirname(rel), path or
                                                     os.path.basename(rel)))
        resolved = resolved.replace(os.sep, "/")
        if resolved.startswith("../") or resolved == "..":
            problems.append(f"{where}: points outside the repository")
            continue
        kind = repo.kind(resolved)
        if kind is None:
            problems.append(f"{where}: {resolved} does not exist")
            continue
        if kind == "ignored":
            problems.append(f"{where}: {resolved} is ignored by git (not in the repository)")
            continue
        if in_docs and not (resolved + "/").startswith("docs/"):
            problems.append(f"{where}: {resolved} is outside docs/ (MkDocs cannot serve it; "
                            "link to the repository instead)")
            continue
        if in_docs and kind == "dir":
            problems.append(f"{where}: a folder; MkDocs links must name a file")
            continue
        if not anchor:
            continue
        if not resolved.endswith(".md"):
            if kind == "file" and not re.fullmatch(r"L\d+(-L\d+)?", anchor):
                problems.append(f"{where}: #{anchor} on a file that is not markdown")
            continue
        style = "mkdocs" if in_docs else "github"
        key = (resolved, style)
        if key not in slug_cache:
            slug_cache[key] = anchors(os.path.join(repo.root, resolved),
                                      github_slug if style == "github" else mkdocs_slug,
                                      style == "github")
        if anchor not in slug_cache[key]:
            near = sorted(a for a in slug_cache[key] if anchor[:6] in a)[:3]
            hint = f" (similar: {', '.join(near)})" if near else ""
            problems.append(f"{where}: no heading #{anchor} in {resolved} "
                            f"({'GitHub' if style == 'github' else 'MkDocs'} slugs){hint}")
    return problems, count


def default_files(root):
    files = ["README.md"] if os.path.exists(os.path.join(root, "README.md")) else []
    docs = os.path.join(root, "docs")
    for base, dirs, names in os.walk(docs):
        dirs.sort()
        for name in sorted(names):
            if name.endswith(".md"):
                files.append(os.path.relpath(os.path.join(base, name), root).replace(os.sep, "/"))
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="markdown files relative to the root "
                        "(default: README.md and docs/**/*.md)")
    parser.add_argument("--root", default=REPO, help="the repository root (default: this one)")
    args = parser.parse_args(argv)
    root = os.path.abspath(args.root)
    files = args.files or default_files(root)
    if not files:
        print("no markdown files to check", file=sys.stderr)
        return 2
    repo = Repository(root)
    mkdocs_slug = mkdocs_slugifier(root)
    problems, total, cache = [], 0, {}
    for rel in files:
        rel = os.path.relpath(os.path.abspath(os.path.join(root, rel)), root).replace(os.sep, "/")
        if not os.path.exists(os.path.join(root, rel)):
            problems.append(f"{rel}: no such file")
            continue
        found, count = check_file(rel, repo, cache, mkdocs_slug)
        problems += found
        total += count
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} broken link(s) of {total} checked in {len(files)} file(s)",
              file=sys.stderr)
        return 1
    print(f"{total} relative link(s) in {len(files)} file(s) resolve")
    return 0


if __name__ == "__main__":
    sys.exit(main())
