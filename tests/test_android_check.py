"""`python -m converter android-check FILE`: the 16 KB page-size check of native libraries and of their place
in an APK, on libraries built here with gcc, on the real libraries of installed wheels, on hand-made ELF
headers of the other classes and byte orders, on zips laid out as .apk/.aab/.aar, and on broken files.

readelf (binutils) is the independent reference for what the ELF headers say.
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from converter.android_check import PAGE, MisalignedError, check_file, format_report, parse_elf, require_aligned
from converter.errors import UsageError
from runcli import REPO, run_cli

SITE = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def readelf_load_aligns(path: Path) -> tuple[int, ...]:
    out = subprocess.run(["readelf", "-lW", str(path)], capture_output=True, text=True, check=True).stdout
    return tuple(int(line.split()[-1], 16) for line in out.splitlines() if line.split()[:1] == ["LOAD"])


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[int, Path]:
    """Two shared libraries from one C file, linked for 4 KB and for 16 KB pages."""
    for tool in ("gcc", "readelf"):
        assert shutil.which(tool), f"{tool} is missing: scripts/setup.sh installs gcc and binutils"
    root = tmp_path_factory.mktemp("so")
    source = root / "answer.c"
    source.write_text("int answer(void) { return 42; }\nint table[4096] = {1};\n")
    libs = {}
    for page in (4096, 16384):
        lib = root / f"libanswer{page // 1024}k.so"
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", f"-Wl,-z,max-page-size={page}", "-o", str(lib), str(source)],
                       check=True, capture_output=True, text=True)
        libs[page] = lib
    return libs


# --- single libraries -------------------------------------------------------------------------------------

@pytest.mark.parametrize("page", [4096, 16384])
def test_gcc_built_library_reads_as_readelf_reads_it(built, page):
    info = parse_elf(built[page].read_bytes(), built[page].name)
    assert info.load_aligns == readelf_load_aligns(built[page])
    assert info.min_align == page and (info.bits, info.endian, info.machine) == (64, "little", "x86_64")


def test_cli_flags_the_4k_library_and_passes_the_16k_one(built):
    bad = run_cli("android-check", built[4096])
    assert bad.returncode == 3, bad.stdout + bad.stderr
    assert "libanswer4k.so" in bad.stderr and "4 KB" in bad.stderr and "[android-check]" in bad.stderr
    assert "max-page-size=16384" in bad.stderr  # the try: line says how to fix it
    assert "NO" in bad.stdout.splitlines()[1]
    good = run_cli("android-check", built[16384])
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stderr == ""
    header, row, summary = good.stdout.splitlines()
    assert row.split() == ["libanswer16k.so", "x86_64", "64-bit", "16", "KB", "ok"]
    assert "16 KB-aligned" in summary


def wheel_libraries(pattern: str) -> list[Path]:
    return sorted(p for p in SITE.glob(pattern) if p.is_file() and not p.is_symlink())


REAL = {
    # LiteRT's interpreter (the desktop build of the Android runtime) and PyTorch's core library: x86_64
    # Linux wheels, linked for 4 KB pages.
    "litert": "ai_edge_litert/_pywrap_litert_interpreter_wrapper.so",
    "torch": "torch/lib/libc10.so",
}


@pytest.mark.parametrize("which", sorted(REAL))
def test_real_wheel_libraries_at_4k_are_flagged(which):
    (lib,) = wheel_libraries(REAL[which])
    report = check_file(lib)
    (found,) = report.libraries
    assert found.elf.load_aligns == readelf_load_aligns(lib)
    assert found.elf.min_align == 4096 and not found.aligned
    with pytest.raises(MisalignedError) as caught:
        require_aligned(report)
    assert caught.value.exit_code == 3 and lib.name in caught.value.message


def test_every_litert_and_torch_library_reads_as_readelf_reads_it():
    libs = wheel_libraries("ai_edge_litert/**/*.so") + wheel_libraries("torch/lib/*.so")
    assert len(libs) >= 10
    for lib in libs:
        assert parse_elf(lib.read_bytes(), str(lib)).load_aligns == readelf_load_aligns(lib), lib


def test_a_real_wheel_library_aligned_beyond_16k_passes():
    """Some manylinux libraries are linked for 2 MB pages (the old x86_64 default): they pass."""
    candidates = [p for p in wheel_libraries("*.libs/*.so*") + wheel_libraries("*/lib/*.so*")
                  if readelf_load_aligns(p) and min(readelf_load_aligns(p)) >= PAGE]
    if not candidates:
        pytest.skip("no installed wheel ships a library aligned to 16 KB or more")
    lib = min(candidates, key=lambda p: p.stat().st_size)
    report = check_file(lib)
    assert report.libraries[0].aligned and report.libraries[0].elf.load_aligns == readelf_load_aligns(lib)
    require_aligned(report)


def test_executorch_wheel_libraries_read_as_readelf_reads_them():
    """ExecuTorch's own environment (.venv-executorch, scripts/setup.sh), when it has been set up."""
    libs = sorted(p for p in (REPO / ".venv-executorch").glob("lib/python3*/site-packages/executorch/**/*.so")
                  if p.is_file() and not p.is_symlink())
    if not libs:
        pytest.skip("no ExecuTorch wheel in .venv-executorch (scripts/setup.sh installs it)")
    for lib in libs:
        found = check_file(lib).libraries[0]
        assert found.elf.load_aligns == readelf_load_aligns(lib), lib
        assert found.aligned == (min(readelf_load_aligns(lib)) >= PAGE), lib
        print(f"{lib.relative_to(REPO)}: LOAD align {found.elf.min_align}")


# --- hand-made ELF headers: 32-bit, big-endian, many LOAD segments -------------------------------------------

def make_elf(bits: int, order: str, machine: int, aligns: list[int], extra_phdrs: int = 1) -> bytes:
    """An ELF header and program headers only: a PT_PHDR first, then one PT_LOAD per alignment."""
    ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1 if order == "<" else 2, 1]) + bytes(9)
    head = struct.Struct(order + ("HHIIIIIHHHHHH" if bits == 32 else "HHIQQQIHHHHHH"))
    phdr = struct.Struct(order + ("IIIIIIII" if bits == 32 else "IIQQQQQQ"))
    phoff = 16 + head.size
    count = extra_phdrs + len(aligns)
    data = ident + head.pack(3, machine, 1, 0, phoff, 0, 0, 16 + head.size, phdr.size, count, 0, 0, 0)
    for _ in range(extra_phdrs):
        data += phdr.pack(6, *([0] * 6), 8) if bits == 32 else phdr.pack(6, 4, 0, 0, 0, 0, 0, 8)
    for i, align in enumerate(aligns):
        offset = vaddr = i * align
        if bits == 32:  # p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags, p_align
            data += phdr.pack(1, offset, vaddr, vaddr, 0, 0, 5, align)
        else:  # p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
            data += phdr.pack(1, 5, offset, vaddr, vaddr, 0, 0, align)
    return data


@pytest.mark.parametrize("bits,order,machine,abi", [(32, "<", 40, "armeabi-v7a"), (32, ">", 20, "ppc"),
                                                    (64, ">", 21, "ppc64"), (64, "<", 183, "arm64-v8a")])
def test_hand_made_headers_of_every_class_and_byte_order(tmp_path, bits, order, machine, abi):
    aligns = [16384, 4096, 65536]
    path = tmp_path / "libx.so"
    path.write_bytes(make_elf(bits, order, machine, aligns))
    assert readelf_load_aligns(path) == tuple(aligns)  # readelf agrees the file says what we meant
    info = parse_elf(path.read_bytes(), path.name)
    assert (info.bits, info.endian, info.machine, info.load_aligns) == (bits, "little" if order == "<" else "big",
                                                                         abi, tuple(aligns))
    assert info.min_align == 4096  # one small segment is enough to fail
    aligned = tmp_path / "liby.so"
    aligned.write_bytes(make_elf(bits, order, machine, [16384, 65536]))
    assert check_file(aligned).libraries[0].aligned


def test_the_32_bit_hint_says_16k_devices_do_not_load_them(tmp_path):
    path = tmp_path / "libold.so"
    path.write_bytes(make_elf(32, "<", 40, [4096]))
    with pytest.raises(MisalignedError) as caught:
        require_aligned(check_file(path))
    assert "32-bit" in caught.value.hint


# --- archives ---------------------------------------------------------------------------------------------

def stored_at(archive: zipfile.ZipFile, name: str, data: bytes, aligned: bool) -> None:
    """Write an uncompressed entry whose data starts on a 16 KB boundary (padding the local extra field, as
    zipalign does, with its 0xD935 record), or one byte past it."""
    offset = archive.fp.tell()
    base = offset + 30 + len(name.encode())
    pad = (-base) % PAGE
    if pad < 6:
        pad += PAGE
    if not aligned:
        pad += 1
    info = zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.extra = struct.pack("<HHH", 0xD935, pad - 4, PAGE) + bytes(pad - 6)
    archive.writestr(info, data)


def make_apk(path: Path, entries: list[tuple[str, bytes, str]]) -> Path:
    """entries: (name, data, how) with how one of 'aligned', 'misaligned', 'deflated'."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("AndroidManifest.xml", b"\x03\x00\x08\x00", compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("classes.dex", b"dex\n035\x00" + bytes(100), compress_type=zipfile.ZIP_DEFLATED)
        for name, data, how in entries:
            if how == "deflated":
                archive.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
            else:
                stored_at(archive, name, data, aligned=how == "aligned")
    return path


def test_apk_with_16k_libraries_stored_on_16k_boundaries_passes(tmp_path, built):
    lib = built[16384].read_bytes()
    apk = make_apk(tmp_path / "app.apk", [("lib/x86_64/libanswer.so", lib, "aligned"),
                                          ("lib/arm64-v8a/libanswer.so", lib, "aligned")])
    report = check_file(apk)
    assert [(l.name, l.stored, l.data_offset % PAGE) for l in report.libraries] == [
        ("lib/x86_64/libanswer.so", True, 0), ("lib/arm64-v8a/libanswer.so", True, 0)]
    with apk.open("rb") as f:  # the offset is where the library's bytes really are
        for found in report.libraries:
            f.seek(found.data_offset)
            assert f.read(len(lib)) == lib
    proc = run_cli("android-check", apk)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stored at" in proc.stdout and "all 16 KB-aligned" in proc.stdout


def test_apk_with_a_16k_library_stored_off_the_boundary_fails(tmp_path, built):
    lib = built[16384].read_bytes()
    apk = make_apk(tmp_path / "app.apk", [("lib/x86_64/libgood.so", lib, "aligned"),
                                          ("lib/x86_64/libshifted.so", lib, "misaligned")])
    report = check_file(apk)
    assert [l.name for l in report.misaligned] == ["lib/x86_64/libshifted.so"]
    (shifted,) = report.misaligned
    assert shifted.elf_aligned and not shifted.zip_aligned and shifted.data_offset % PAGE == 1
    proc = run_cli("android-check", apk)
    assert proc.returncode == 3
    assert "libshifted.so: stored at zip offset" in proc.stderr and "libgood.so" not in proc.stderr
    assert "(misaligned)" in proc.stdout


def test_apk_compressed_libraries_are_judged_by_their_elf_headers_only(tmp_path, built):
    apk = make_apk(tmp_path / "app.apk", [("lib/x86_64/lib16k.so", built[16384].read_bytes(), "deflated"),
                                          ("lib/x86_64/lib4k.so", built[4096].read_bytes(), "deflated")])
    report = check_file(apk)
    assert [l.name for l in report.misaligned] == ["lib/x86_64/lib4k.so"]
    assert all(l.stored is False for l in report.libraries)
    assert "compressed" in format_report(report)


@pytest.mark.parametrize("suffix,folder", [(".aar", "jni/arm64-v8a"), (".aab", "base/lib/arm64-v8a")])
def test_aar_and_aab_libraries_are_found_and_checked(tmp_path, built, suffix, folder):
    path = tmp_path / f"bundle{suffix}"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("AndroidManifest.xml", "<manifest/>")
        archive.writestr("classes.jar", b"PK\x05\x06" + bytes(18))
        archive.writestr(f"{folder}/libgood.so", built[16384].read_bytes())
        archive.writestr(f"{folder}/libbad.so", built[4096].read_bytes())
        archive.writestr(f"{folder}/libold.so", make_elf(32, "<", 40, [4096]))
    report = check_file(path)
    assert report.kind == suffix[1:]
    assert sorted(l.name for l in report.misaligned) == [f"{folder}/libbad.so", f"{folder}/libold.so"]
    assert all(l.stored is None for l in report.libraries)  # zip placement is not the bundle's concern
    proc = run_cli("android-check", path)
    assert proc.returncode == 3 and "libbad.so" in proc.stderr and "libgood.so" not in proc.stderr


def test_archive_without_native_libraries_passes(tmp_path):
    path = tmp_path / "plain.aar"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("classes.jar", b"")
    proc = run_cli("android-check", path)
    assert proc.returncode == 0 and "no native libraries" in proc.stdout


# --- broken input: exit 2 ---------------------------------------------------------------------------------

def corrupt_files(tmp: Path, built: dict[int, Path]) -> dict[str, Path]:
    lib = built[16384].read_bytes()
    files = {}
    files["random bytes"] = tmp / "librandom.so"
    files["random bytes"].write_bytes(random.Random(0).randbytes(4096))
    files["truncated header"] = tmp / "libshort.so"
    files["truncated header"].write_bytes(lib[:40])
    files["truncated program headers"] = tmp / "libcut.so"
    phoff = struct.unpack_from("<Q", lib, 32)[0]
    files["truncated program headers"].write_bytes(lib[:phoff + 20])
    files["bad class"] = tmp / "libclass.so"
    files["bad class"].write_bytes(lib[:4] + b"\x07" + lib[5:])
    apk = make_apk(tmp / "full.apk", [("lib/x86_64/libanswer.so", lib, "aligned")])
    files["truncated apk"] = tmp / "cut.apk"
    files["truncated apk"].write_bytes(apk.read_bytes()[: apk.stat().st_size // 2])
    files["not ELF in an apk"] = make_apk(tmp / "text.apk", [("lib/x86_64/libtext.so", b"INPUT(-lc)\n", "aligned")])
    files["no such file"] = tmp / "missing.apk"
    files["not an android file"] = tmp / "notes.txt"
    files["not an android file"].write_text("hello")
    return files


def test_corrupt_and_wrong_files_are_usage_errors_with_exit_2(tmp_path, built):
    for what, path in corrupt_files(tmp_path, built).items():
        with pytest.raises(UsageError) as caught:
            check_file(path)
        assert caught.value.stage == "android-check" and caught.value.hint, what
        proc = run_cli("android-check", path)
        assert proc.returncode == 2, (what, proc.stdout, proc.stderr)
        assert proc.stderr.startswith("error: [android-check]") and "Traceback" not in proc.stderr, what
        assert "try:" in proc.stderr, what
