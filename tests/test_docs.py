"""Keep docs/passes.md and docs/abi.md true: they are checked against the code."""

from __future__ import annotations

import os
import re

from conftest import ROOT
from tracec.passes import PASSES, pass_summary
from tracec.versions import (
    ABI_VERSION,
    FORMAT_VERSION,
    SUPPORTED_ABI_VERSIONS,
    SUPPORTED_FORMAT_VERSIONS,
)

PASSES_MD = open(os.path.join(ROOT, "docs", "passes.md")).read()
ABI_MD = open(os.path.join(ROOT, "docs", "abi.md")).read()


def test_every_pass_is_documented_and_has_a_filecheck_test():
    for name in PASSES:
        assert f"## {name}\n" in PASSES_MD, f"docs/passes.md lacks a section for {name}"
        path = os.path.join(ROOT, "tests", "filecheck", "passes", f"{name}.mlir")
        assert os.path.isfile(path), f"no filecheck test for {name}"
        cls = PASSES[name]()
        assert cls.name == name
        assert pass_summary(name).startswith(f"{name}:"), "the module docstring starts with the pass name"
    documented = set(re.findall(r"^## ([a-z-]+)$", PASSES_MD, re.M))
    assert documented == set(PASSES)


def test_default_pipeline_table_matches_driver():
    from tracec.driver import stage_passes
    from tracec.options import CompileOptions

    for stage in ("stablehlo", "tracec", "iree-input", "xla-input"):
        names = [p.name for p in stage_passes(CompileOptions(), stage)]
        row = next(line for line in PASSES_MD.splitlines() if line.startswith(f"| `{stage}`"))
        assert [n for n in re.findall(r"`([a-z-]+)(?:\{[^`]*\})?`", row)[1:] if n in PASSES] == names


def test_abi_doc_versions_and_entries(lif2_vmfb):
    assert f"**format version {FORMAT_VERSION}**" in ABI_MD
    assert f"**calling convention (ABI) version {ABI_VERSION}**" in ABI_MD
    lo, hi = SUPPORTED_FORMAT_VERSIONS
    assert f"format versions {lo}..{hi}" in ABI_MD
    lo, hi = SUPPORTED_ABI_VERSIONS
    assert f"ABI versions {lo}..{hi}" in ABI_MD
    import tracec.runtime

    manifest = tracec.runtime.load(lif2_vmfb).manifest
    for key in manifest:
        assert f'"{key}"' in ABI_MD, f"manifest key {key} is not documented"
    for entry, sig in manifest["entries"].items():
        assert f"| `{entry}` |" in ABI_MD
    fwd = manifest["entries"]["forward"]["args"]
    assert fwd[-1] == "input:x" and fwd[0].startswith("param:")


def test_runtime_refuses_versions_out_of_range():
    import pytest

    from tracec.runtime.artifact import ArtifactError, check_manifest

    good = {"format": "tracec-artifact", "format_version": FORMAT_VERSION, "abi_version": ABI_VERSION}
    assert check_manifest("m.vmfb", dict(good)) == good
    with pytest.raises(ArtifactError, match=r"abi version 99; this runtime supports 1 to 1"):
        check_manifest("m.vmfb", {**good, "abi_version": 99})
    with pytest.raises(ArtifactError, match="format version 0"):
        check_manifest("m.vmfb", {**good, "format_version": 0})
