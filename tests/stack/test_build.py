"""`sam build`'s artifacts as Lambda gets them: sizes, what each layer holds, and every handler importing
from its own function code and layers alone (not from the dev environment)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from .conftest import requirements_of

pytestmark = pytest.mark.slow

MB = 1_000_000
PART_LIMIT = 100 * MB  # our own budget for one layer or one function, unzipped
LAMBDA_LIMIT = 250 * MB  # Lambda: function code and all of its layers together, unzipped (AWS: 250 MB)

# Not Lambda code: the operator CLI and local mode (today's modules, and agesweep/cli/ + agesweep/local/
# after the split), the trainer; and the packages only they or the plot need.
NOT_IN_SHARED_LAYER_AGESWEEP = ("cli", "operations", "local", "tracking.py", "contracts_doc.py")
NOT_IN_SHARED_LAYER = ("typer", "rich", "moto", "matplotlib", "numpy", "torch", "training", "PIL", "fontTools")


def tree_size(path: Path) -> int:
    """Bytes of the files under path (what Lambda counts as unzipped size)."""
    return sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() or f.is_symlink())


def fmt(size: int) -> str:
    return f"{size / MB:.1f} MB"


def sam_translate(build_dir: Path) -> dict[str, Any]:
    """The built template after the SAM transform (Globals merged), with local paths as s3://bucket/<Name>."""
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((build_dir / "template.yaml").read_text())
    for name, resource in template["Resources"].items():
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = f"s3://bucket/{name}"

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    parameters = {"VpcId": "vpc-0", "SubnetIds": ["subnet-a", "subnet-b"], "ImageTag": "test"}
    return transform(template, parameters, NoManagedPolicies())


@pytest.fixture(scope="module")
def built(sam_build: Path) -> dict[str, Any]:
    """{function: {"dir", "layers": [layer dirs in order], "env": {...}, "handler"}} as deployed."""
    translated_template = sam_translate(sam_build)
    translated, parameters = translated_template["Resources"], translated_template.get("Parameters", {})

    def env_value(key: str, value: Any) -> str:
        """A parameter's default where the template has one (LOG_LEVEL must be a level), else a placeholder."""
        if isinstance(value, str):
            return value
        default = parameters.get(value.get("Ref", ""), {}).get("Default") if isinstance(value, dict) else None
        return f"test-{key}" if default is None else str(default)

    layer_dirs = {
        logical_id: sam_build / r["Properties"]["Content"]["S3Key"]
        for logical_id, r in translated.items()
        if r["Type"] == "AWS::Lambda::LayerVersion"
    }
    functions = {}
    for name, r in translated.items():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        props = r["Properties"]
        functions[name] = {
            "dir": sam_build / props["Code"]["S3Key"],
            "layers": [layer_dirs[layer["Ref"]] for layer in props.get("Layers", [])],
            "env": {k: env_value(k, v) for k, v in props["Environment"]["Variables"].items()},
            "handler": props["Handler"],
        }
    assert len(functions) == 6, sorted(functions)
    return functions


def layer(sam_build: Path, name: str) -> Path:
    path = sam_build / name / "python"
    assert path.is_dir(), f"{name} has no python/ folder: {sorted(p.name for p in (sam_build / name).iterdir())}"
    return path


def distributions(site: Path) -> dict[str, str]:
    """{canonical name: version} of the *.dist-info folders under site."""
    found = {}
    for info in site.glob("*.dist-info"):
        fields = dict(
            line.split(": ", 1) for line in (info / "METADATA").read_text(errors="replace").splitlines()[:20]
            if ": " in line
        )
        found[canonicalize_name(fields["Name"])] = fields["Version"]
    return found


def test_every_layer_and_function_fits_and_so_does_each_function_with_its_layers(built: dict[str, Any]) -> None:
    sizes = {path: tree_size(path) for fn in built.values() for path in [fn["dir"], *fn["layers"]]}
    report = "\n".join(f"  {path.name}: {fmt(size)}" for path, size in sorted(sizes.items()))
    too_big = [path.name for path, size in sizes.items() if size >= PART_LIMIT]
    assert not too_big, f"over {fmt(PART_LIMIT)} unzipped: {too_big}\n{report}"
    for name, fn in built.items():
        total = sum(sizes[path] for path in [fn["dir"], *fn["layers"]])
        parts = " + ".join(f"{path.name} {fmt(sizes[path])}" for path in [fn["dir"], *fn["layers"]])
        assert total < LAMBDA_LIMIT, f"{name}: {parts} = {fmt(total)}, over Lambda's {fmt(LAMBDA_LIMIT)}"
    print(f"\nbuilt sizes:\n{report}")


def test_only_collate_results_gets_the_plotting_layer(built: dict[str, Any]) -> None:
    layers = {name: [path.name for path in fn["layers"]] for name, fn in built.items()}
    assert layers == {
        "StartRunFunction": ["AgesweepLayer"],
        "ValidateManifestFunction": ["AgesweepLayer"],
        "CollateResultsFunction": ["AgesweepLayer", "PlottingLayer"],
        "FormatAlertFunction": ["AgesweepLayer"],
        "WatchEfsFunction": ["AgesweepLayer"],
        "ClassifyFailureFunction": ["AgesweepLayer"],
    }


def test_shared_layer_is_lambda_code_and_the_lambda_extra_only(sam_build: Path) -> None:
    site = layer(sam_build, "AgesweepLayer")
    top = {p.name for p in site.iterdir()}
    dists = distributions(site)
    assert not top & set(NOT_IN_SHARED_LAYER), sorted(top & set(NOT_IN_SHARED_LAYER))
    unwanted = {canonicalize_name(n) for n in ("typer", "rich", "moto", "matplotlib", "numpy", "pillow", "torch")}
    assert not dists.keys() & unwanted, sorted(dists.keys() & unwanted)
    package = {p.name for p in (site / "agesweep").iterdir()}
    assert not package & set(NOT_IN_SHARED_LAYER_AGESWEEP), sorted(package & set(NOT_IN_SHARED_LAYER_AGESWEEP))
    assert not [p for p in package if p.startswith("cli")], sorted(package)
    assert {"__init__.py", "collation", "contracts.py", "plan.py", "manifest.py"} <= package, sorted(package)
    # Every requirement of the lambda extra (and the core) is in, at its pinned version: a new Lambda
    # dependency in pyproject.toml reaches the layer.
    for requirement in requirements_of("lambda"):
        name = canonicalize_name(requirement.name)
        assert name in dists, f"{requirement} is not in the layer"
        assert requirement.specifier.contains(dists[name]), f"{requirement}: the layer has {dists[name]}"


def test_plotting_layer_is_the_plot_extra_and_agrees_with_the_shared_layer(sam_build: Path) -> None:
    shared, plotting = layer(sam_build, "AgesweepLayer"), layer(sam_build, "PlottingLayer")
    plot_dists, shared_dists = distributions(plotting), distributions(shared)
    for requirement in requirements_of("plot", core=False):
        name = canonicalize_name(requirement.name)
        assert name in plot_dists and requirement.specifier.contains(plot_dists[name]), requirement
    assert not (plotting / "agesweep").exists()
    assert not {"boto3", "botocore", "pydantic"} & plot_dists.keys()
    assert not (plotting / "matplotlib" / "mpl-data" / "sample_data").exists()
    # Lambda unpacks both layers into /opt: a package in both must be the same version in both.
    differ = {n: (shared_dists[n], plot_dists[n]) for n in shared_dists.keys() & plot_dists.keys()
              if shared_dists[n] != plot_dists[n]}
    assert not differ, f"versions differ between AgesweepLayer and PlottingLayer: {differ}"


# Run with -S (no site module: neither this venv's nor the base interpreter's site-packages) and -P
# (no script/cwd directory on sys.path): sys.path is PYTHONPATH, then the standard library.
IMPORT_HANDLER = textwrap.dedent(
    """
    import importlib, os, sys

    allowed = os.environ["PYTHONPATH"].split(os.pathsep)
    leaked = [p for p in sys.path if "site-packages" in p or "dist-packages" in p]
    assert not leaked, f"site-packages on sys.path: {leaked}"
    for name in ("typer", "pytest", "moto"):  # installed in the dev environment, not in any layer
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            pass
        else:
            raise SystemExit(f"{name} is importable: the dev environment leaks in")

    module_name, _, handler_name = sys.argv[1].rpartition(".")
    module = importlib.import_module(module_name)
    handler = getattr(module, handler_name)
    assert callable(handler), handler
    assert module.__file__.startswith(allowed[0]), module.__file__
    import agesweep
    assert agesweep.__file__.startswith(allowed[1]), agesweep.__file__

    if sys.argv[2] == "plot":  # the report's plot renders from the layers (matplotlib, numpy, fonts)
        from agesweep.contracts import AgeOutcome, ManifestRef, RunLineage, SliceOutcome, Summary
        from agesweep.report_plots import plot_png

        ages = [
            AgeOutcome(age=age, job_name=f"age-{age}", status="SUCCEEDED", slices=[SliceOutcome(
                age=age, start_index=0, end_index=9, status="SUCCEEDED",
                metrics={"heldout_c_index": 0.6 + age / 1000, "final_loss": 1.0 / age})])
            for age in (40, 41, 42)
        ]
        summary = Summary(
            run_id="r-test", run_name="test", lineage=RunLineage(run_id="r-test", manifest=ManifestRef(key="m.yaml")),
            total=3, succeeded=3, failed=0, failed_percent=0.0,
            tolerated_failure_percent=0.0, within_tolerance=True, failed_ages=[], ages=ages, failures=[],
            collated_at="2025-01-01T00:00:00Z",
        )
        png = plot_png(summary)
        assert png.startswith(b"\\x89PNG") and len(png) > 10_000, len(png)
        import matplotlib
        assert matplotlib.__file__.startswith(allowed[-1]), matplotlib.__file__
    else:
        try:
            import matplotlib
        except ModuleNotFoundError:
            pass
        else:
            raise SystemExit(f"matplotlib is importable without the PlottingLayer: {matplotlib.__file__}")
    print("imported", sys.argv[1])
    """
)


def lambda_env(fn: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    """What Lambda's runtime would set, less credentials: the function's variables (from the template,
    Globals merged, placeholders for intrinsics), a region, tracing off (no X-Ray daemon here)."""
    return {
        **fn["env"],
        "PYTHONPATH": os.pathsep.join(str(p) for p in [fn["dir"], *(layer / "python" for layer in fn["layers"])]),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MPLCONFIGDIR": str(tmp_path / "mpl"),
        "LANG": "C.UTF-8",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


@pytest.mark.parametrize(
    "function",
    [
        "StartRunFunction", "ValidateManifestFunction", "CollateResultsFunction", "FormatAlertFunction",
        "WatchEfsFunction", "ClassifyFailureFunction",
    ],
)
def test_handler_imports_from_its_function_and_layers_alone(
    function: str, built: dict[str, Any], tmp_path: Path
) -> None:
    fn = built[function]
    mode = "plot" if function == "CollateResultsFunction" else "no-plot"
    done = subprocess.run(
        [sys.executable, "-S", "-P", "-c", IMPORT_HANDLER, fn["handler"], mode],
        check=False, cwd=tmp_path, env=lambda_env(fn, tmp_path), capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"imported {fn['handler']}" in done.stdout


LOAD_SHARED_OBJECTS = textwrap.dedent(
    """
    import ctypes, os, pathlib, sys

    failed = []
    for path in sorted(pathlib.Path(sys.argv[1]).rglob("*.so*")):
        if path.is_file() and (path.suffix == ".so" or ".so." in path.name):
            try:
                ctypes.CDLL(str(path))
            except OSError as error:
                failed.append(f"{path}: {error}")
    print("\\n".join(failed), flush=True)
    # Some extension modules' destructors need the interpreter they were never initialised in: skip them.
    os._exit(1 if failed else 0)
    """
)


@pytest.mark.parametrize("layer_name", ["AgesweepLayer", "PlottingLayer"])
def test_every_shared_object_in_the_layer_loads(layer_name: str, sam_build: Path, tmp_path: Path) -> None:
    """The Makefile strips extension modules: each one (and each vendored library) must still load."""
    site = layer(sam_build, layer_name)
    done = subprocess.run(
        [sys.executable, "-S", "-P", "-c", LOAD_SHARED_OBJECTS, str(site)],
        check=False, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
