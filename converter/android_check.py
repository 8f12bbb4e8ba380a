"""The 16 KB page-size check: `python -m converter android-check FILE`.

Android 15 devices may run with 16 KB memory pages, and Google Play requires apps that target Android 15 or
later to support them on 64-bit devices (from November 1, 2025). A shared library can be mapped on such a
device only when every ELF LOAD segment is aligned to at least 16 KB (`p_align`); and the APK's installer
maps an uncompressed library straight out of the zip, so such an entry's data must also start at a 16 KB
boundary of the file (https://developer.android.com/guide/practices/page-sizes).

`check_file` reads an .so, or every .so inside an .apk, .aab or .aar (a zip), with nothing but the
standard library: ELF headers are parsed with struct (32- and 64-bit, either byte order), zip entries'
data offsets come from their local headers. It returns the findings; the CLI prints them as a table and
raises `MisalignedError` (exit 3) when any library would not load on a 16 KB device. A file that is not
what it claims (not ELF, a truncated header, a broken zip) is a `UsageError` (exit 2) naming it.
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ConverterError, UsageError

STAGE = "android-check"
PAGE = 16384
ARCHIVES = (".apk", ".aab", ".aar", ".zip")

PT_LOAD = 1
PN_XNUM = 0xFFFF
# e_machine values of the Android ABIs, and a few others named for readable output.
MACHINES = {3: "x86", 8: "mips", 20: "ppc", 21: "ppc64", 40: "armeabi-v7a", 62: "x86_64", 183: "arm64-v8a",
            243: "riscv64"}


class MisalignedError(ConverterError):
    """A native library, or an uncompressed library's place in an APK, is not 16 KB-aligned (exit code 3:
    the artifact was read and fails the check, like an artifact that fails parity)."""

    exit_code = 3


@dataclass(frozen=True)
class ElfInfo:
    bits: int  # 32 or 64
    endian: str  # "little" or "big"
    machine: str
    load_aligns: tuple[int, ...]  # p_align of every PT_LOAD segment, in file order

    @property
    def min_align(self) -> int:
        return min(self.load_aligns)


@dataclass(frozen=True)
class Library:
    """One .so: where it is (the file, or its name inside the archive), its ELF facts, and for an APK
    entry whether it is stored uncompressed and at which file offset its data starts."""

    name: str
    elf: ElfInfo
    stored: bool | None = None  # None: not an APK entry (a bare .so, or in an .aab/.aar)
    data_offset: int | None = None

    @property
    def elf_aligned(self) -> bool:
        return self.elf.min_align >= PAGE

    @property
    def zip_aligned(self) -> bool:
        """Only an APK's stored entries are mapped from the zip; a compressed one is extracted at install."""
        return not self.stored or self.data_offset % PAGE == 0

    @property
    def aligned(self) -> bool:
        return self.elf_aligned and self.zip_aligned

    def problems(self) -> list[str]:
        found = []
        if not self.elf_aligned:
            found.append(f"LOAD segments aligned to {_size(self.elf.min_align)} (< 16 KB)")
        if not self.zip_aligned:
            found.append(f"stored at zip offset {self.data_offset} = {self.data_offset % PAGE} past a 16 KB boundary")
        return found


@dataclass(frozen=True)
class Report:
    path: Path
    kind: str  # "so", "apk", "aab", "aar", "zip"
    libraries: tuple[Library, ...]

    @property
    def misaligned(self) -> list[Library]:
        return [lib for lib in self.libraries if not lib.aligned]


def parse_elf(data: bytes, name: str) -> ElfInfo:
    """The p_align of every PT_LOAD segment of an ELF file, from its header and program headers only."""
    if len(data) < 16 or data[:4] != b"\x7fELF":
        raise UsageError(f"{name} is not an ELF file (it starts with {data[:4]!r})", stage=STAGE,
                         hint="pass an .so built for Android, or an .apk, .aab or .aar")
    ei_class, ei_data = data[4], data[5]
    if ei_class not in (1, 2) or ei_data not in (1, 2):
        raise UsageError(f"{name}: unknown ELF class {ei_class} or byte order {ei_data} (corrupt header?)",
                         stage=STAGE, hint="the file may be damaged; rebuild or download it again")
    bits, order = (32 if ei_class == 1 else 64), ("<" if ei_data == 1 else ">")
    # e_type .. e_shstrndx, after the 16 bytes of e_ident; addresses and offsets are 4 or 8 bytes.
    header = struct.Struct(order + ("HHIIIIIHHHHHH" if bits == 32 else "HHIQQQIHHHHHH"))
    _need(data, 16 + header.size, name, "ELF header")
    (_, e_machine, _, _, e_phoff, e_shoff, _, _, e_phentsize, e_phnum, e_shentsize, _, _) = \
        header.unpack_from(data, 16)
    if e_phnum == PN_XNUM:  # more than 65534 program headers: the real count is section 0's sh_info
        sh_info_at = e_shoff + (28 if bits == 32 else 44)
        _need(data, sh_info_at + 4, name, "section header 0")
        (e_phnum,) = struct.unpack_from(order + "I", data, sh_info_at)
    phdr = struct.Struct(order + ("IIIIIIII" if bits == 32 else "IIQQQQQQ"))
    if e_phnum and e_phentsize < phdr.size:
        raise UsageError(f"{name}: program header entries of {e_phentsize} bytes, ELF{bits} needs {phdr.size}",
                         stage=STAGE, hint="the file may be damaged; rebuild or download it again")
    _need(data, e_phoff + e_phnum * e_phentsize, name, f"{e_phnum} program headers")
    aligns = []
    for i in range(e_phnum):
        fields = phdr.unpack_from(data, e_phoff + i * e_phentsize)
        if fields[0] == PT_LOAD:
            aligns.append(fields[7])  # p_align is last in both layouts (p_flags moves, p_align does not)
    if not aligns:
        raise UsageError(f"{name}: an ELF file without LOAD segments is no shared library", stage=STAGE,
                         hint="pass a shared library (.so)")
    return ElfInfo(bits, "little" if order == "<" else "big", MACHINES.get(e_machine, f"machine {e_machine}"),
                   tuple(aligns))


def _need(data: bytes, end: int, name: str, what: str) -> None:
    if end > len(data):
        raise UsageError(f"{name} is truncated: its {what} end at byte {end}, the file has {len(data)}",
                         stage=STAGE, hint="the file may be damaged; rebuild or download it again")


def check_file(path: Path) -> Report:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} does not exist or is not a file", stage=STAGE,
                         hint="pass an .apk, .aab, .aar or .so file")
    suffix = path.suffix.lower()
    if suffix in ARCHIVES or (suffix != ".so" and zipfile.is_zipfile(path)):
        return _check_archive(path, suffix.lstrip(".") or "zip")
    if suffix == ".so" or ".so." in path.name:
        return Report(path, "so", (Library(path.name, parse_elf(path.read_bytes(), str(path))),))
    raise UsageError(f"{path}: not an .apk, .aab, .aar or .so file", stage=STAGE,
                     hint="pass the app's .apk or .aab, a library's .aar, or a native library (.so)")


def _check_archive(path: Path, kind: str) -> Report:
    libraries = []
    try:
        with zipfile.ZipFile(path) as archive, path.open("rb") as raw:
            for info in archive.infolist():
                if info.is_dir() or not _is_library(info.filename):
                    continue
                where = f"{path}!{info.filename}"
                elf = parse_elf(archive.read(info), where)
                if kind == "apk":
                    stored = info.compress_type == zipfile.ZIP_STORED
                    libraries.append(Library(info.filename, elf, stored, _data_offset(raw, info, where)))
                else:
                    libraries.append(Library(info.filename, elf))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError) as exc:
        raise UsageError(f"{path} is not a readable zip archive ({type(exc).__name__}: {exc})", stage=STAGE,
                         hint=f"an .{kind} is a zip file; this one may be damaged or truncated") from None
    return Report(path, kind, tuple(libraries))


def _is_library(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.endswith(".so") or ".so." in base


def _data_offset(raw, info: zipfile.ZipInfo, where: str) -> int:
    """Where the entry's bytes start in the file: after its local header, whose name and extra field may
    differ in length from the central directory's copy (zipalign pads the local extra field)."""
    raw.seek(info.header_offset)
    local = raw.read(30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"no local file header for {info.filename} at offset {info.header_offset}")
    name_len, extra_len = struct.unpack_from("<HH", local, 26)
    return info.header_offset + 30 + name_len + extra_len


def _size(n: int) -> str:
    return f"{n // 1024} KB" if n >= 1024 and n % 1024 == 0 else f"{n} B"


def format_report(report: Report) -> str:
    """A short table: one row per library, its ABI, the smallest LOAD alignment, its zip placement."""
    if not report.libraries:
        return f"{report.path}: no native libraries (.so) found"
    apk = report.kind == "apk"  # only an APK's entries are mapped from the zip: the column is shown for it
    rows = [("library", "abi", "ELF", "LOAD align", *(("in the APK",) if apk else ()), "16 KB")]
    for lib in report.libraries:
        placement = ()
        if apk:
            placement = (f"stored at {lib.data_offset}" + ("" if lib.zip_aligned else " (misaligned)")
                         if lib.stored else "compressed",)
        rows.append((lib.name, lib.elf.machine, f"{lib.elf.bits}-bit", _size(lib.elf.min_align), *placement,
                     "ok" if lib.aligned else "NO"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    bad = report.misaligned
    n = len(report.libraries)
    summary = f"{n} native librar{'y' if n == 1 else 'ies'} in {report.path}: "
    summary += ("16 KB-aligned" if n == 1 else "all 16 KB-aligned") if not bad else f"{len(bad)} not 16 KB-aligned"
    if report.kind == "apk" and not any(lib.stored for lib in report.libraries):
        summary += " (every .so is compressed: the APK extracts them at install, so their zip offsets do not matter)"
    return "\n".join([*lines, summary])


def require_aligned(report: Report) -> None:
    bad = report.misaligned
    if not bad:
        return
    names = "; ".join(f"{lib.name}: {', '.join(lib.problems())}" for lib in bad)
    only_32 = all(lib.elf.bits == 32 and lib.zip_aligned for lib in bad)
    hint = ("rebuild with -Wl,-z,max-page-size=16384 (NDK r27+ does so by default), or take a release of the "
            "library that ships 16 KB-aligned binaries; an APK's uncompressed libraries need AGP 8.5.1+ (or "
            "zipalign -P 16)")
    if only_32:
        hint = ("all of them are 32-bit, which 16 KB-page devices (64-bit only) never load; " + hint)
    raise MisalignedError(f"{report.path}: {len(bad)} native librar{'y is' if len(bad) == 1 else 'ies are'} not "
                          f"16 KB-aligned: {names}", stage=STAGE, hint=hint)
