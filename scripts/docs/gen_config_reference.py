#!/usr/bin/env python3
"""Generate docs/reference/config.md: every key of every config file under configs/.

    .venv/bin/python scripts/docs/gen_config_reference.py            # rewrite the page
    .venv/bin/python scripts/docs/gen_config_reference.py --check    # exit 1 if it is stale

The page ends with the typed options as the code declares them (`attnlab config --defaults`
of the binary, --binary, default build/attnlab).

For the primary config (configs/config.yaml) and every option file configs/<group>/<option>.yaml
the page lists each key (dotted, as it is overridden on the command line), its type (inferred
from the default), the default, the allowed values where a comment lists them as `a | b | c`,
and a one-line meaning taken from the YAML comments.

Values come from PyYAML (its node tree also gives each key's line); comments come from a small
line-based pass over the file:
  1. the inline comment on the key's line, else
  2. the comment block directly above the key (no blank line in between), except the file's
     leading comment block, which describes the whole file, else
  3. the comment of the sibling key directly above, when that one came from a block (a block
     comment over several keys, e.g. `shared_heads` / `routed_k`), else
  4. a `key: ...` sentence anywhere in the file's comments (e.g. a header that documents the
     keys of a loss term).
Allowed values are read from the meaning, else from such a `key: a | b` sentence.

--check regenerates the page in memory and compares it with the committed file; every
difference is printed as one line naming the key (or file) and the command that regenerates the
page, and the exit code is 1. The output is deterministic: files in sorted order, keys in file
order. Needs PyYAML (scripts/requirements.txt).
"""
import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_page import write_or_check  # noqa: E402

try:
    import yaml
except ImportError:  # pragma: no cover - reported to the user
    sys.stderr.write("gen_config_reference.py needs PyYAML: .venv/bin/pip install PyYAML\n")
    sys.exit(2)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_REL = "docs/reference/config.md"
REGENERATE = ".venv/bin/python scripts/docs/gen_config_reference.py"
COLUMNS = ("type", "default", "allowed", "meaning")
LINE = "\x00"  # marks the start of a comment line in CommentIndex.all_text


# ----------------------------------------------------------------------------- comments


def split_comment(line):
    """(code, comment) of one YAML line; '#' inside quotes is not a comment."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            # a quote starts a string only at a value/item start
            before = line[:i].rstrip()
            if before == "" or before.endswith((":", "-", "[", ",", "{")):
                quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i], line[i + 1:].strip()
    return line, None


def is_comment_line(line):
    return line.lstrip().startswith("#")


def comment_text(line):
    return line.lstrip()[1:].strip()


def strip_parens(text):
    """Text without (...) groups, nested ones included."""
    out, depth = [], 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def clean_word(word):
    return word.strip().strip("`'\"").rstrip(".,;:").strip("`'\"")


def allowed_values(text):
    """Values listed as `a | b | c` in a comment, or [] (parenthesised remarks ignored)."""
    if not text:
        return []
    plain = strip_parens(text).replace("`", "")
    pipes = [m for m in re.finditer(r"\s\|\s", plain)]
    if not pipes:
        return []
    # one chain: the pipes whose in-between segments are short and have no sentence break
    chains, current = [], [pipes[0]]
    for prev, cur in zip(pipes, pipes[1:]):
        between = plain[prev.end():cur.start()].strip()
        if between and len(between.split()) <= 4 and not re.search(r"[.;:]\s|[.;:]$", between):
            current.append(cur)
        else:
            chains.append(current)
            current = [cur]
    chains.append(current)
    chain = chains[0]
    before = plain[:chain[0].start()].split()
    after = plain[chain[-1].end():].split()
    if not before or not after:
        return []
    values = [clean_word(before[-1])]
    for prev, cur in zip(chain, chain[1:]):
        values.append(clean_word(plain[prev.end():cur.start()]))
    values.append(clean_word(after[0]))
    return [v for v in values if v]


def sentence_after(text, start):
    """text[start:] up to the first '. ' or '; ' outside parentheses."""
    depth = 0
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif ch in ".;" and depth == 0 and (i + 1 == len(text) or text[i + 1] in " " + LINE):
            return text[start:i].strip()
    return text[start:].strip()


class CommentIndex:
    """The comments of one YAML file, by line (0-based)."""

    def __init__(self, lines):
        self.lines = lines
        self.header_end = 0  # lines [0, header_end) are the file's leading comment block
        while self.header_end < len(lines) and is_comment_line(lines[self.header_end]):
            self.header_end += 1
        self.inline = {}
        for i, line in enumerate(lines):
            if not is_comment_line(line):
                code, comment = split_comment(line)
                if comment is not None and code.strip():
                    # comment lines aligned with an inline comment continue it
                    column, j = len(code), i + 1
                    while (j < len(lines) and is_comment_line(lines[j])
                           and len(lines[j]) - len(lines[j].lstrip()) == column):
                        comment += " " + comment_text(lines[j])
                        j += 1
                    self.inline[i] = comment
        # every comment's text joined; LINE marks where a comment line starts
        self.all_text = " ".join(
            LINE + (comment_text(l) if is_comment_line(l) else self.inline.get(i, ""))
            for i, l in enumerate(lines) if is_comment_line(l) or i in self.inline)
        self.all_text = re.sub(r"[ \t]+", " ", self.all_text)

    def header(self):
        text = [comment_text(l) for l in self.lines[:self.header_end]]
        text = [t for t in text if not t.startswith("@package")]
        return re.sub(r"\s+", " ", " ".join(text)).strip()

    def global_package(self):
        return any("@package _global_" in l for l in self.lines[:self.header_end])

    def block_above(self, line):
        """The comment block directly above `line`, or None (the file header never counts)."""
        i = line - 1
        block = []
        while i >= self.header_end and is_comment_line(self.lines[i]):
            block.append(comment_text(self.lines[i]))
            i -= 1
        if not block:
            return None
        return re.sub(r"\s+", " ", " ".join(reversed(block))).strip()

    def mention(self, key):
        """The sentence `key: ...` that starts a comment line or follows '. ' / '; ' in the
        file's comments, or None."""
        pattern = "(?:" + LINE + r"\s*|[.;]\s+)" + re.escape(key) + r"\s*:\s+"
        for m in re.finditer(pattern, self.all_text):
            sentence = sentence_after(self.all_text, m.end()).replace(LINE, "")
            if sentence.strip():
                return re.sub(r"\s+", " ", sentence).strip()
        return None


# ----------------------------------------------------------------------------- keys


def scalar_text(node, value):
    if node.style in ("'", '"') or (isinstance(value, str) and value != node.value):
        return '"' + value.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    return node.value if node.value != "" else "null"


def flow_text(value):
    text = yaml.safe_dump(value, default_flow_style=True, width=10 ** 6, allow_unicode=True)
    return text.strip().removesuffix("...").strip()


def type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "interpolation" if "${" in value else "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__


def key_part(name):
    return name if re.fullmatch(r"[\w\-+~]+", name) else '["' + name + '"]'


def join_key(prefix, name):
    part = key_part(name)
    if not prefix:
        return part
    return prefix + part if part.startswith("[") else prefix + "." + part


class Row:
    def __init__(self, key, line, type_, default, allowed, meaning):
        self.key, self.line = key, line
        self.fields = {"type": type_, "default": default, "allowed": allowed, "meaning": meaning}


def collect_rows(loader, node, prefix, comments, rows, skip_top=()):
    """Appends a Row per key of the mapping `node` (recursing into maps and lists of maps)."""
    previous = None  # (line, indent, meaning-from-block) of the previous sibling
    for key_node, value_node in node.value:
        name = str(key_node.value)
        if not prefix and name in skip_top:
            previous = None
            continue
        key = join_key(prefix, name)
        line = key_node.start_mark.line
        value = loader.construct_object(value_node, deep=True)
        meaning, from_block = comments.inline.get(line), False
        if meaning is None:
            meaning = comments.block_above(line)
            from_block = meaning is not None
        if (meaning is None and previous and previous[0] == line - 1 and previous[2]
                and re.search(r"(?<![\w.])" + re.escape(name) + r"(?![\w])", previous[2])):
            meaning, from_block = previous[2], True
        mention = comments.mention(name)
        if meaning is None and mention:
            meaning = mention
        allowed = allowed_values(meaning) or (allowed_values(mention) if mention else [])
        if isinstance(value_node, yaml.ScalarNode):
            default = scalar_text(value_node, value)
        elif value in ({}, []):
            default = flow_text(value)
        elif value_node.flow_style and value_node.end_mark.line == value_node.start_mark.line:
            default = comments.lines[line][value_node.start_mark.column:
                                           value_node.end_mark.column]  # as written
        elif isinstance(value_node, yaml.SequenceNode) and not any(
                isinstance(item, yaml.MappingNode) for item in value_node.value):
            default = flow_text(value)
        else:
            default = ""
        if (allowed and isinstance(value_node, yaml.ScalarNode) and value is not None
                and default.strip('"') not in allowed):
            allowed = []  # a list that does not name the default describes another key
        rows.append(Row(key, line, type_name(value), default, allowed, meaning or ""))
        previous = (line, key_node.start_mark.column, meaning if from_block else None)
        if isinstance(value_node, yaml.MappingNode):
            collect_rows(loader, value_node, key, comments, rows)
        elif isinstance(value_node, yaml.SequenceNode):
            for index, item in enumerate(value_node.value):
                if isinstance(item, yaml.MappingNode):
                    collect_rows(loader, item, f"{key}[{index}]", comments, rows)


def load(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    finally:
        loader.dispose()
    return text, loader, node


def defaults_list(loader, node):
    """The `defaults:` entries as text, e.g. ['model: gpt', 'override /scheduler: constant']."""
    if not isinstance(node, yaml.MappingNode):
        return []
    for key_node, value_node in node.value:
        if key_node.value == "defaults" and isinstance(value_node, yaml.SequenceNode):
            out = []
            for item in loader.construct_object(value_node, deep=True):
                if isinstance(item, dict):
                    out.extend(f"{k}: {'null' if v is None else v}" for k, v in item.items())
                else:
                    out.append(str(item))
            return out
    return []


class ConfigFile:
    def __init__(self, configs_dir, rel):
        self.rel = rel  # relative to configs/, e.g. optim/adamw.yaml
        text, loader, node = load(os.path.join(configs_dir, rel))
        self.comments = CommentIndex(text.split("\n"))
        self.group = os.path.dirname(rel)
        self.option = os.path.splitext(os.path.basename(rel))[0]
        self.global_package = self.comments.global_package()
        self.description = self.comments.header()
        self.defaults = defaults_list(loader, node)
        self.rows = []
        if isinstance(node, yaml.MappingNode):
            prefix = "" if (self.global_package or not self.group) else self.group
            collect_rows(loader, node, prefix, self.comments, self.rows, skip_top=("defaults",))


def find_files(configs_dir):
    primary, groups = None, {}
    for root, dirs, files in os.walk(configs_dir):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith((".yaml", ".yml")):
                continue
            rel = os.path.relpath(os.path.join(root, name), configs_dir).replace(os.sep, "/")
            if "/" not in rel:
                if os.path.splitext(rel)[0] == "config":
                    primary = rel
                continue
            groups.setdefault(os.path.dirname(rel), []).append(rel)
    return primary, {g: sorted(fs) for g, fs in sorted(groups.items())}


# ----------------------------------------------------------------------------- markdown


def cell(text):
    text = re.sub(r"\s+", " ", text or "").strip()
    if text.count("`") % 2:
        text = text.replace("`", "\\`")
    text = text.replace("<", "&lt;").replace("|", "\\|")
    return text


def code_cell(text):
    """`text` as inline code; plain escaped text when it holds a pipe (a pipe inside code in a
    table cell renders differently in MkDocs and on GitHub)."""
    if text == "":
        return ""
    if "|" in text:
        return cell(text)
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return fence + pad + text + pad + fence


def file_heading(rel):
    return f"### `configs/{rel}`"


def table(rows):
    out = ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    for row in rows:
        f = row.fields
        allowed = ", ".join(code_cell(v) for v in f["allowed"]) if f["allowed"] else ""
        out.append(f"| {code_cell(row.key)} | {f['type']} | {code_cell(f['default'])} | "
                   f"{allowed} | {cell(f['meaning'])} |")
    return out


def typed_options(binary):
    """The `attnlab config --defaults` listing: the groups bound into typed option structs, with
    each option's type, default, meaning and checks as the code declares them."""
    result = subprocess.run([binary, "config", "--defaults"], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"gen_config_reference.py: '{binary} config --defaults' failed: "
                         f"{(result.stderr or result.stdout).strip()}")
    return [
        "## Typed options (from the code)",
        "",
        "These groups are bound into typed option structs, each default in one place in the code",
        "(a test keeps the files above equal to them); a key they do not have, a wrong type or a",
        "value out of range is an error naming the key. The listing is",
        "`attnlab config --defaults` (key, type, default, meaning, allowed range):",
        "",
        "```text",
        *result.stdout.rstrip("\n").split("\n"),
        "```",
        "",
    ]


def render(configs_dir, binary=None):
    primary_rel, groups = find_files(configs_dir)
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by scripts/docs/gen_config_reference.py from configs/; do not edit by hand."
        " Regenerate: .venv/bin/python scripts/docs/gen_config_reference.py -->",
        "",
        "Every key of the shipped configs, generated from the YAML files under `configs/` and",
        "their comments. The **key** column is the dotted name to override on the command line",
        "(`attnlab train optim.lr=1e-3`); the **type** is inferred from the default (`null` means",
        "unset by default); **allowed** lists the values a comment names as `a | b | c`; the",
        "**meaning** is the comment on or above the key. A group option is chosen with",
        "`group=option` (`attention=moh`); its keys then live under the group's name, except in",
        "files marked *global*, whose keys are top-level (experiments and tasks).",
        "",
    ]
    if primary_rel:
        primary = ConfigFile(configs_dir, primary_rel)
        lines += ["## Primary config", "", file_heading(primary_rel), ""]
        if primary.description:
            lines += [cell(primary.description), ""]
        if primary.defaults:
            lines += ["Defaults list (the option each group starts from; `_self_` marks where",
                      "this file's own keys are merged):", "",
                      "| group | default option | options |", "|---|---|---|"]
            for entry in primary.defaults:
                group, _, option = entry.partition(":")
                options = [os.path.splitext(os.path.basename(r))[0]
                           for r in groups.get(group.strip(), [])]
                lines.append(f"| {code_cell(group.strip())} | {code_cell(option.strip())} | "
                             f"{', '.join(code_cell(o) for o in options)} |")
            lines.append("")
        lines += table(primary.rows) + [""]
    for group, rels in groups.items():
        options = [os.path.splitext(os.path.basename(r))[0] for r in rels]
        lines += [f"## Group `{group}`", "",
                  f"Options: {', '.join(code_cell(o) for o in options)}.", ""]
        for rel in rels:
            f = ConfigFile(configs_dir, rel)
            lines += [file_heading(rel), ""]
            if f.global_package:
                lines += ["*global*: the keys below are top-level keys.", ""]
            if f.description:
                lines += [cell(f.description), ""]
            if f.defaults:
                lines += ["Defaults list: " + ", ".join(code_cell(d) for d in f.defaults) + ".", ""]
            if f.rows:
                lines += table(f.rows) + [""]
            else:
                lines += ["No keys.", ""]
    if binary:
        lines += typed_options(binary)
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- --check


def split_row(line):
    """Cells of a markdown table row, splitting on unescaped pipes."""
    cells, current, i = [], [], 0
    body = line.strip()[1:-1] if line.strip().endswith("|") else line.strip()[1:]
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] == "|":
            current.append("\\|")
            i += 2
            continue
        if body[i] == "|":
            cells.append("".join(current).strip())
            current = []
        else:
            current.append(body[i])
        i += 1
    cells.append("".join(current).strip())
    return cells


def items(markdown):
    """{item id: {field: text}} of a rendered page: one per option file (its description), per
    key row, per defaults-list row and per section (its text)."""
    out, current, section_text = {}, "(top)", []

    def flush():
        if current.startswith("##") or current == "(top)":
            if section_text:
                out[("section", current)] = {"text": "\n".join(section_text)}
        else:
            out[("file", current)] = {"description": "\n".join(section_text)}

    for line in markdown.split("\n"):
        m = re.match(r"^### `configs/([^`]+)`$", line)
        if m or line.startswith("## "):
            flush()
            current, section_text = (m.group(1) if m else line), []
            continue
        if line.startswith("| ") and not line.startswith(("| key |", "| group |")):
            cells = split_row(line)
            if len(cells) == 5:
                out[("key", current, cells[0].strip("` "))] = dict(zip(COLUMNS, cells[1:]))
                continue
            if len(cells) == 3:
                out[("default", current, cells[0].strip("` "))] = {"default option": cells[1],
                                                                    "options": cells[2]}
                continue
        if line.startswith("|---"):
            continue
        if line.strip():
            section_text.append(line)
    flush()
    return out


def describe(item):
    kind = item[0]
    if kind == "key":
        return f"key {item[2]} (configs/{item[1]})"
    if kind == "default":
        return f"defaults-list entry {item[2]} (configs/{item[1]})"
    if kind == "file":
        return f"option file configs/{item[1]}"
    return "the introduction" if item[1] == "(top)" else f"section '{item[1].lstrip('# ')}'"


def stale_items(expected, actual):
    """One message per difference between the expected and the committed page."""
    want, have = items(expected), items(actual)
    new_files = {i[1] for i in want if i[0] == "file" and i not in have}
    gone_files = {i[1] for i in have if i[0] == "file" and i not in want}
    messages = []
    for item in want:
        if item[0] in ("key", "default") and item[1] in new_files:
            continue  # reported once, as the file
        if item not in have:
            messages.append(f"{describe(item)} is not documented")
        elif want[item] != have[item]:
            changed = [k for k in want[item] if want[item].get(k) != have[item].get(k)]
            what = "changed" if item[0] == "section" else f"{', '.join(changed)} changed"
            messages.append(f"{describe(item)} {what}")
    for item in have:
        if item not in want and not (item[0] in ("key", "default") and item[1] in gone_files):
            messages.append(f"{describe(item)} no longer exists")
    if not messages and expected != actual:
        messages.append("layout changed")
    return messages


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed page; exit 1 when stale")
    parser.add_argument("--configs", default=os.path.join(REPO, "configs"),
                        help="the configs directory (default: the repository's)")
    parser.add_argument("--out", default=os.path.join(REPO, OUT_REL),
                        help=f"the page (default: {OUT_REL})")
    parser.add_argument("--binary", default=os.path.join(REPO, "build", "attnlab"),
                        help="the attnlab binary whose `config --defaults` lists the typed "
                             "options (default: build/attnlab)")
    args = parser.parse_args(argv)
    if not os.access(args.binary, os.X_OK):
        print(f"gen_config_reference.py: no attnlab binary at {args.binary} (build it, or pass "
              "--binary)", file=sys.stderr)
        return 2
    page = render(args.configs, args.binary)
    return write_or_check(page, args.out, REPO, args.check, stale_items, REGENERATE)

if __name__ == "__main__":
    sys.exit(main())
