"""Package metadata that pip reads: an SPDX licence, so that installs print no deprecation box."""

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")
PYPROJECT = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())


def test_licence_is_an_spdx_expression_with_a_setuptools_that_reads_it():
    # A table ({text = ...}) makes setuptools >= 77 print its project.license warning.
    assert PYPROJECT["project"]["license"] == "BSD-3-Clause"
    assert "setuptools>=77" in PYPROJECT["build-system"]["requires"]
    classifiers = PYPROJECT["project"].get("classifiers", [])
    assert not any(c.startswith("License ::") for c in classifiers)  # refused with SPDX
