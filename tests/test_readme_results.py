"""The numbers the README quotes next to a result file are the numbers of that file.

The README is cut into blocks: paragraphs, list items and tables (code blocks are left
out). A block that links a file in ``benchmarks/results/`` quotes that file, and so does a
table right after such a block. Every result such a block quotes (a decimal, a percentage,
"N of M", as ``prose_numbers`` reads them) must be shown, to the precision the README
gives, by the result files cited in its section so far (the ``#``-headed part of the
README it stands in). A number that no result file shows (a paper's
number, a goal, a measurement kept from an earlier run, a difference of two quoted
numbers) is listed in ``NOT_FROM_RESULTS`` with the reason, and must still be quoted.
"""

import re
from pathlib import Path

import pytest

from prose_numbers import quoted_results, unshown

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
_CITED = re.compile(r"benchmarks/results/[\w/]+\.md")

# (the README's words around the number, the number): numbers no result file shows.
NOT_FROM_RESULTS = {
    ("was 4.2x with 2 threads", "4.2"): "measured before fit was trimmed (an earlier speed.md)",
    ("(10,000 x 491, 8% non-zero)", "8%"): "the density of the one-hot census table, not a sparse.md row",
    ("(50,000 x 2,000, 1% non-zero", "1%"): "20 non-zeros of 2,000 per row, as sparse.md gives it",
    ("~2.7x their matmul work", "2.7"): "counted from the networks' shapes, not measured",
    ("reports 0.9522 / 0.9945", "0.9522"): "the PLE paper's table",
    ("it lowered 6 of 8, most on a", "6 of 8"): "counted from target_storage_selection.md's per-column table",
}


def blocks(markdown):
    """(section, text) for each paragraph, list item and table, outside code blocks."""
    section, found, current = "", [], []

    def close():
        if current:
            found.append((section, "\n".join(current)))
            current.clear()

    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            close()
            in_code = not in_code
        elif in_code:
            continue
        elif line.startswith("#"):
            close()
            section = line
        elif not line.strip():
            close()
        else:
            starts_item = line.startswith("- ") or (line.startswith("|") and not (current and current[-1].startswith("|")))
            if starts_item or (current and current[-1].startswith("|") and not line.startswith("|")):
                close()
            current.append(line)
    close()
    return found


def quoting_blocks(markdown):
    """(text, cited files) for each block that quotes result files."""
    quoting, cited_in_section, section_seen, previous_cites = [], [], None, False
    for section, text in blocks(markdown):
        if section != section_seen:
            section_seen, cited_in_section = section, []
        own = _CITED.findall(text)
        cited_in_section += [f for f in own if f not in cited_in_section]
        table_after_citation = text.startswith("|") and previous_cites
        if own or table_after_citation:
            quoting.append((text, list(cited_in_section)))
        previous_cites = bool(own)
    return quoting


def results_text(files):
    """The cited files' text."""
    return "\n".join((REPO / name).read_text() for name in files)


def unsourced(markdown, read=results_text):
    """(quote, cited files) for each quoted result its cited files do not show."""
    missing = []
    for text, files in quoting_blocks(markdown):
        flat = re.sub(r"\s+", " ", text)
        exempt = {number for (words, number) in NOT_FROM_RESULTS if words in flat}
        missing += [(quote, files) for quote in unshown(quoted_results(text), read(files))
                    if quote not in exempt]
    return missing


def test_readme_quotes_only_numbers_its_result_files_show():
    missing = unsourced(README.read_text())
    assert not missing, "\n".join(f"{quote!r} is not in {', '.join(files)}" for quote, files in missing)


def test_readme_quotes_result_files_that_exist():
    cited = {name for text, files in quoting_blocks(README.read_text()) for name in files}
    assert len(cited) > 15
    assert all((REPO / name).is_file() for name in cited), sorted(n for n in cited if not (REPO / n).is_file())


@pytest.mark.parametrize("words, number", sorted(NOT_FROM_RESULTS))
def test_numbers_said_not_to_come_from_results_are_quoted_and_not_shown(words, number):
    """Each exception is still in the README, and still needed: its files do not show it."""
    blocks = [(text, files) for text, files in quoting_blocks(README.read_text())
              if words in re.sub(r"\s+", " ", text)]
    assert blocks and number in quoted_results(words)
    assert all(unshown([number], results_text(files)) for _, files in blocks)


def test_check_catches_a_number_edited_on_one_side_only():
    readme = (
        "## Results\n\n"
        "- [Demo](benchmarks/results/demo.md): MMoE won in 3 of 3, 1,000 of 1,000 times,\n"
        "  (ratio 0.71-0.78),\n"
        "  89% of the time.\n\n"
        "| model | MSE |\n|---|---|\n| mmoe | 0.043 |\n\n"
        "```python\nprint(0.5)\n```\n"
    )
    report = ("MMoE in 3 of 3 seeds, 1,000 of 1,000 draws; ratio median 0.73 (range 0.71-0.78); 89%.\n"
              "| mmoe | 0.0431 |")
    files = {"benchmarks/results/demo.md": report}

    def read(names):
        return "\n".join(files[n] for n in names)

    assert unsourced(readme, read) == []
    cited = ["benchmarks/results/demo.md"]
    assert unsourced(readme.replace("0.78", "0.75"), read) == [("0.75", cited)]
    assert unsourced(readme.replace("3 of 3", "2 of 3"), read) == [("2 of 3", cited)]
    assert unsourced(readme.replace("1,000 of 1,000", "1,000 of 1,001"), read) == [("1,000 of 1,001", cited)]
    assert unsourced(readme.replace("| 0.043 |", "| 0.044 |"), read) == [("0.044", cited)]
    files["benchmarks/results/demo.md"] = report.replace("89%", "88%")
    assert unsourced(readme, read) == [("89%", cited)]
    # A shown 0.0435 may be 0.04349 or 0.04351: either rounding of it is the same result.
    files["benchmarks/results/demo.md"] = report.replace("0.0431", "0.0435")
    assert unsourced(readme, read) == unsourced(readme.replace("0.043 ", "0.044 "), read) == []
    assert unsourced(readme.replace("0.043 ", "0.042 "), read) == [("0.042", cited)]
