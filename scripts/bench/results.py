"""Where scripts/bench.sh's results go: BENCH_OUT (target/bench), the
table's rows and the notes under it, each appended to a file as the steps
run (every step is its own python3 process), printed at the end by `table`."""
import os
import sys

OUT = os.environ["BENCH_OUT"]
ROWS = os.path.join(OUT, "rows.md")
NOTES = os.path.join(OUT, "notes.md")


def row(*cells):
    with open(ROWS, "a") as f:
        f.write("| " + " | ".join(str(c) for c in cells) + " |\n")


def note(text):
    with open(NOTES, "a") as f:
        f.write("- " + text + "\n")
    print("bench: " + text, file=sys.stderr)


def table():
    print("| # | measurement | figure | ratio [95% CI] | target | target met? |")
    print("|---|---|---|---|---|---|")
    print(open(ROWS).read(), end="")
    if os.path.exists(NOTES):
        print("\nNotes (measured in the same run):\n")
        print(open(NOTES).read(), end="")

