"""One environment story: environment.yml, requirements.txt, pyproject.toml and the Dockerfile
name the same libraries at the same versions."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
#: PyPI name -> conda-forge / bioconda name, where they differ
CONDA_NAMES = {"torch": "pytorch", "snakemake": "snakemake-minimal"}
TEST_ONLY = {"pytest"}


def pins() -> dict[str, Version]:
    """requirements.txt: canonical name -> pinned version."""
    out = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"requirements.txt: {line!r} is not a pin"
            out[canonicalize_name(req.name)] = Version(spec.version)
    return out


def conda_specs() -> dict[str, str]:
    """environment.yml: conda name -> version spec."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        assert isinstance(dep, str), f"environment.yml: {dep!r}: no pip section, conda packages only"
        name, _, version = dep.partition("=")
        out[name] = version
    return out


def test_environment_yml_has_the_versions_of_requirements_txt():
    specs, versions = conda_specs(), pins()
    assert specs.pop("python") == "3.11"
    torch = versions.pop("torch")
    minor = f"{torch.major}.{torch.minor}.*"
    # conda-forge's CUDA build of the same torch minor version
    assert specs.pop("pytorch") == minor and specs.pop("pytorch-gpu") == minor
    expected = {CONDA_NAMES.get(name, name): str(v) for name, v in versions.items()}
    assert specs == {**expected, **cluster_pins(), **cluster_pins("tracking")}


def cluster_pins(extra: str = "cluster") -> dict[str, str]:
    """pyproject.toml's ``extra`` (the `cluster` one, or `tracking`): name -> version, of the
    packages it pins (==)."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"][extra]
    reqs = [Requirement(r) for r in extra]
    return {canonicalize_name(r.name): next(iter(r.specifier)).version for r in reqs
            if len(r.specifier) == 1 and next(iter(r.specifier)).operator == "=="}


def test_the_slurm_plugin_is_pinned_alike_in_the_test_and_cluster_extras():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    test = {canonicalize_name(Requirement(r).name): str(Requirement(r).specifier)
            for r in extras["test"]}
    pin = cluster_pins()["snakemake-executor-plugin-slurm"]  # KeyError: not pinned
    assert test["snakemake-executor-plugin-slurm"] == f"=={pin}"


def test_pyproject_names_the_same_libraries_and_admits_the_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    versions = pins()
    deps = [Requirement(r) for r in project["dependencies"]]
    assert {canonicalize_name(r.name) for r in deps} == set(versions) - TEST_ONLY
    test_deps = [Requirement(r) for r in project["optional-dependencies"]["test"]]
    for req in deps + [r for r in test_deps if canonicalize_name(r.name) in TEST_ONLY]:
        assert req.specifier.contains(versions[canonicalize_name(req.name)]), (
            f"pyproject.toml {req} excludes requirements.txt's "
            f"{versions[canonicalize_name(req.name)]}")


def test_the_image_installs_requirements_txt_and_the_clusters_storage_plugin():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", dockerfile, re.M)
    assert "-r /tmp/create-bench/requirements.txt" in dockerfile
    assert "grep -E '^torch==' /tmp/create-bench/requirements.txt" in dockerfile  # same torch
    cluster = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["cluster"]
    s3 = next(r for r in cluster if r.startswith("snakemake-storage-plugin-s3"))
    assert f'"{s3}"' in dockerfile
    image = yaml.safe_load((ROOT / "profiles/kubernetes/config.yaml").read_text())[
        "container-image"]
    assert image.split("/")[-1].startswith("create-bench:")


def test_the_tracking_extras_mlflow_admits_the_pinned_stack():
    """Full mlflow (for `mlflow ui`) installs beside requirements.txt without moving a pin: the
    installed mlflow is the extra's, and each of its requirements admits our pinned version."""
    from importlib.metadata import requires, version

    assert version("mlflow") == cluster_pins("tracking")["mlflow"]
    versions = pins()
    for line in requires("mlflow"):
        req = Requirement(line)
        name = canonicalize_name(req.name)
        if name in versions and not req.marker:
            assert req.specifier.contains(versions[name]), (
                f"mlflow {version('mlflow')} needs {line}: requirements.txt pins {versions[name]}")
