"""The Android sample's pure-Java core (mobile/android/core), compiled with javac and run under JUnit 4 on
this JVM, against a real conversion and the real runtimes' outputs on it; and the app module's Java
(both flavors and the instrumented test) compiled against API stubs.

The core compiles with --release 8 as in its Gradle build, so that nothing newer than the app's minSdk
can creep in unnoticed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from converter.layout import from_artifact
from converter.parity import compare
from mobile_runtimes import ANDROID, golden_arrays

CORE = ANDROID / "core"
APP = ANDROID / "app"
# Signatures of the Android framework, AndroidX Test, LiteRT 1.4.1, executorch-android 1.5.1 and
# pytorch_android_lite 2.1.0 that the app calls, copied from their sources; bodies throw. common/ goes with
# both flavors, executorch/ and ptl/ with their own.
STUBS = Path(__file__).parent / "android_stubs"
FLAVORS = ("executorch", "ptl")
# Debian's junit4 package; JUnit 4.13 needs hamcrest-core beside it.
JUNIT_JARS = [Path("/usr/share/java/junit4.jar"), Path("/usr/share/java/hamcrest-core.jar")]
JAVA_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def jdk() -> None:
    if shutil.which("javac") is None or shutil.which("java") is None:
        pytest.skip("no JDK: javac and java are needed (apt-get install openjdk-17-jdk-headless)")
    missing = [str(jar) for jar in JUNIT_JARS if not jar.is_file()]
    assert not missing, f"JUnit 4 is missing: {', '.join(missing)} (apt-get install junit4)"


@pytest.fixture(scope="module")
def runtime_outputs(tmp_path_factory, mobile_runs, golden) -> Path:
    """What the lite interpreter and LiteRT gave on the golden inputs, in each artifact's layout, with
    Python's parity numbers, for ConvertedFolderTest to replay."""
    reference = golden_arrays(golden, "outputs")
    artifacts = {}
    for key, run in mobile_runs.items():
        perms = {b["name"]: b["perm"] for b in run.spec["outputs"]}
        got = [{name: from_artifact(y, perms[name]) for name, y in case.items()} for case in run.outputs]
        result = compare(reference, got, golden["tolerances"][run.spec["precision"]], against="pytorch")
        artifacts[key] = {
            "max_abs_err": result.max_abs_err,
            "max_rel_err": result.max_rel_err,
            "cases": [
                {"inputs": [case_in[b["name"]].ravel().tolist() for b in run.spec["inputs"]],
                 "outputs": [case_out[b["name"]].ravel().tolist() for b in run.spec["outputs"]]}
                for case_in, case_out in zip(run.inputs, run.outputs)
            ],
        }
    path = tmp_path_factory.mktemp("jvm") / "runtime_outputs.json"
    path.write_text(json.dumps({"artifacts": artifacts}, allow_nan=False))
    return path


def _javac(out: Path, sources: list[Path], *options: str) -> None:
    proc = subprocess.run(["javac", "-Xlint:all,-options", "-Werror", "-encoding", "UTF-8", "-d", str(out), *options,
                           *map(str, sources)], capture_output=True, text=True, timeout=JAVA_TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_core_unit_tests_pass_on_the_jvm(jdk, tmp_path, digits_dir, runtime_outputs):
    main_src = sorted((CORE / "src" / "main" / "java").rglob("*.java"))
    test_src = sorted((CORE / "src" / "test" / "java").rglob("*.java"))
    main_out, test_out = tmp_path / "main", tmp_path / "test"
    _javac(main_out, main_src, "--release", "8")
    classpath = ":".join(map(str, [main_out, *JUNIT_JARS]))
    _javac(test_out, test_src, "-cp", classpath)

    test_root = CORE / "src" / "test" / "java"
    classes = [".".join(p.relative_to(test_root).with_suffix("").parts) for p in test_src if p.stem.endswith("Test")]
    assert any(c.endswith("ConvertedFolderTest") for c in classes)
    proc = subprocess.run(
        ["java", f"-Dconverted.dir={digits_dir}", f"-Druntime.outputs={runtime_outputs}",
         "-cp", f"{test_out}:{classpath}", "org.junit.runner.JUnitCore", *classes],
        capture_output=True, text=True, timeout=JAVA_TIMEOUT_S)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK (" in proc.stdout
    # The .pte conversion's golden data was read and its recorded runtime outputs replayed, not assumed away.
    assert "executorch" in json.loads(runtime_outputs.read_text())["artifacts"]
    assert "java parity executorch: PASS" in proc.stdout and "model.pte: " in proc.stdout


def _r_java(out: Path) -> Path:
    """com.example.digits.R from the app's resources, as aapt would name them: every @+id in the layouts,
    every layout and every string. A Java reference to a resource that does not exist fails to compile."""
    res = APP / "src" / "main" / "res"
    ids = sorted({m for f in (res / "layout").glob("*.xml") for m in re.findall(r'@\+id/(\w+)', f.read_text())})
    layouts = sorted(f.stem for f in (res / "layout").glob("*.xml"))
    strings = sorted(set(re.findall(r'<string name="(\w+)"', (res / "values" / "strings.xml").read_text())))
    assert ids and layouts and strings
    body = "".join(
        f"    public static final class {kind} {{\n"
        + "".join(f"        public static final int {name} = 0x7f{n:06x};\n" for n, name in enumerate(names, 1))
        + "    }\n"
        for kind, names in (("id", ids), ("layout", layouts), ("string", strings)))
    path = out / "com" / "example" / "digits" / "R.java"
    path.parent.mkdir(parents=True)
    path.write_text(f"package com.example.digits;\n\npublic final class R {{\n{body}}}\n")
    return path


@pytest.mark.parametrize("flavor", FLAVORS)
def test_app_sources_of_each_flavor_compile_against_the_api_stubs(jdk, tmp_path, flavor):
    """No Android SDK here: this catches errors in the app's own Java (types, names, missing resources,
    a flavor's runner calling what its runtime lacks), not differences between the stubs and the real APIs."""
    core_out, stubs_out, app_out = tmp_path / "core", tmp_path / "stubs", tmp_path / "app"
    _javac(core_out, sorted((CORE / "src" / "main" / "java").rglob("*.java")), "--release", "8")
    stubs = sorted((STUBS / "common").rglob("*.java")) + sorted((STUBS / flavor).rglob("*.java"))
    _javac(stubs_out, stubs, "--release", "17", "-cp", ":".join(map(str, JUNIT_JARS)))
    sources = [*sorted((APP / "src" / "main" / "java").rglob("*.java")),
               *sorted((APP / "src" / flavor / "java").rglob("*.java")),
               *sorted((APP / "src" / "androidTest" / "java").rglob("*.java")), _r_java(tmp_path / "gen")]
    classpath = ":".join(map(str, [core_out, stubs_out, *JUNIT_JARS]))
    _javac(app_out, sources, "--release", "17", "-cp", classpath)
    assert (app_out / "com" / "example" / "digits" / "Runtimes.class").is_file()
    runner = {"executorch": "PteRunner", "ptl": "PtlRunner"}[flavor]
    assert (app_out / "com" / "example" / "digits" / f"{runner}.class").is_file()
