"""Writing or checking a generated reference page, shared by gen_config_reference.py and
gen_cli_reference.py: write the page, or (--check) compare it with the committed file and print
one line per stale item, naming it and the command that regenerates the page."""
import os


def write_or_check(page, out, repo, check, stale_items, regenerate):
    """Returns the exit code: 0 written or up to date, 1 missing or stale."""
    shown = os.path.relpath(out, repo) if out.startswith(repo) else out
    if check:
        try:
            with open(out, encoding="utf-8") as f:
                committed = f.read()
        except OSError:
            print(f"{shown} is missing; regenerate with: {regenerate}")
            return 1
        if committed == page:
            print(f"{shown} is up to date")
            return 0
        for message in stale_items(page, committed):
            print(f"{shown} is stale: {message}; regenerate with: {regenerate}")
        return 1
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write(page)
    print(f"wrote {shown}")
    return 0
