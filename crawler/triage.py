"""Triage: what a fetched body is, judged by its bytes first and its label second.

Attackers label payloads as whatever gets them through (an EXE as
``image/png``, a ZIP as ``text/html``, an ELF as ``text/plain``), so the magic
bytes decide; the declared type and the file name only settle what the bytes
leave open (scripts and HTML are both text). :func:`sniff` returns a
:class:`Sniffed` that says which route the URL takes and why.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from dataclasses import dataclass, field
from email.message import Message
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

# Categories a payload falls in (the family is malware-download for all of them).
EXECUTABLE = "executable"
APK = "apk"
ARCHIVE = "archive"
SCRIPT = "script"
DOCUMENT = "document"
PAYLOAD_CATEGORIES = (EXECUTABLE, APK, ARCHIVE, SCRIPT, DOCUMENT)

_ELF_MACHINES = {
    2: "SPARC",
    3: "x86",
    4: "m68k",
    8: "MIPS",
    20: "PowerPC",
    21: "PowerPC64",
    40: "ARM",
    42: "SuperH",
    62: "x86-64",
    183: "AArch64",
    243: "RISC-V",
}
_EXECUTABLE_EXT = {
    ".exe", ".dll", ".scr", ".com", ".pif", ".cpl", ".msi", ".msix", ".appx", ".lnk", ".jar",
    ".elf", ".bin", ".apk", ".dex", ".sys", ".ocx",
}  # fmt: skip
_SCRIPT_EXT = {
    ".js", ".jse", ".vbs", ".vbe", ".wsf", ".wsh", ".ps1", ".psm1", ".bat", ".cmd", ".hta",
    ".sh", ".py", ".pl", ".vb",
}  # fmt: skip
_SCRIPT_TYPES = (
    "javascript",
    "ecmascript",
    "vbscript",
    "x-sh",
    "x-shellscript",
    "x-powershell",
    "hta",
    "x-bat",
    "x-msdos-program",
)
# Text that makes a script a dropper whatever its label (WSH, PowerShell, shell).
_DROPPER_TEXT = re.compile(
    rb"WScript\.Shell|ActiveXObject|CreateObject\s*\(|ADODB\.Stream|MSXML2\.XMLHTTP|"
    rb"Shell\.Application|powershell(?:\.exe)?\s+-|Invoke-WebRequest|DownloadString|"
    rb"FromBase64String|\bIEX\b|cmd(?:\.exe)?\s+/c|wget\s+https?://|curl\s+-[a-zA-Z]*\s+https?://|"
    rb"chmod\s+\+?[0-7x]+",
    re.IGNORECASE,
)
_HTML_START = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*"
    rb"<(?:!doctype\s+html|html|head|body|script|meta|title|div|iframe|link|style|form|p|a|h[1-6]|table|center|noscript)\b",
    re.IGNORECASE | re.DOTALL,
)
_HTML_ANYWHERE = re.compile(rb"<(?:html|body|head|script|iframe|meta)\b", re.IGNORECASE)
_OLE_MACRO = re.compile(
    rb"_VBA_PROJECT|V\x00B\x00A\x00|Auto_?Open|Workbook_Open|Document_Open|AutoExec|"
    rb"Attribute VB_",
    re.IGNORECASE,
)
_PDF_ACTIVE = re.compile(rb"/(?:JavaScript|JS|Launch|OpenAction|AA|EmbeddedFile|RichMedia)\b")
_INNER_RISKY = re.compile(
    r"\.(?:exe|dll|scr|com|pif|cpl|msi|lnk|jar|apk|js|jse|vbs|vbe|wsf|hta|ps1|bat|cmd|iso|img|docm|xlsm)$",
    re.IGNORECASE,
)


@dataclass
class Sniffed:
    """What a body is: ``kind`` (pe, elf, zip, html...), its category and a label."""

    kind: str
    category: str | None  # one of PAYLOAD_CATEGORIES, "html", or None (benign content)
    label: str  # a readable description, e.g. "PE32 executable (Windows)"
    risky: bool = False  # executable content, macros, active PDF, dropper text...
    details: list[str] = field(default_factory=list)  # e.g. archive members, macro markers
    declared: str = ""  # the Content-Type as served

    @property
    def is_html(self) -> bool:
        return self.category == "html"

    @property
    def is_payload(self) -> bool:
        return self.category in PAYLOAD_CATEGORIES

    def as_meta(self) -> dict[str, object]:
        """What a check keeps of it (``CheckItem.meta["sniffed"]``, read by the rules)."""
        return {
            "kind": self.kind,
            "category": self.category,
            "label": self.label,
            "risky": self.risky,
            "details": self.details,
            "declared": self.declared,
        }


def media_type(content_type: str | bytes | None) -> str:
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1", "replace")
    return (content_type or "").split(";", 1)[0].strip().lower()


def filename_from(url: str, content_disposition: str | bytes | None = None) -> str:
    """A display name for a payload: Content-Disposition's filename, else the URL's last part.

    Only ever used as a label (and a member name inside an evidence zip), never as a path.
    """
    name = ""
    if content_disposition:
        if isinstance(content_disposition, bytes):
            content_disposition = content_disposition.decode("latin-1", "replace")
        msg = Message()
        msg["content-disposition"] = content_disposition
        name = msg.get_filename() or ""
    if not name:
        try:
            name = unquote(PurePosixPath(urlsplit(url).path).name)
        except ValueError:
            name = ""
    name = re.sub(r"[^\w.\-() ]+", "_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")
    return name[:120] or "payload"


def _pe(body: bytes) -> Sniffed | None:
    if len(body) < 64:
        return None
    (offset,) = struct.unpack_from("<I", body, 0x3C)
    if offset + 24 > len(body) or body[offset : offset + 4] != b"PE\x00\x00":
        return Sniffed("mz", EXECUTABLE, "DOS/MZ executable", risky=True)
    (machine,) = struct.unpack_from("<H", body, offset + 4)
    (characteristics,) = struct.unpack_from("<H", body, offset + 22)
    magic = body[offset + 24 : offset + 26]
    bits = "PE32+" if magic == b"\x0b\x02" else "PE32"
    what = "DLL" if characteristics & 0x2000 else "executable"
    arch = {0x14C: "x86", 0x8664: "x86-64", 0xAA64: "ARM64", 0x1C0: "ARM"}.get(machine, "")
    return Sniffed("pe", EXECUTABLE, f"{bits} {what} (Windows{', ' + arch if arch else ''})", True)


def _elf(body: bytes) -> Sniffed:
    bits = "64-bit" if body[4:5] == b"\x02" else "32-bit"
    endian = "<" if body[5:6] != b"\x02" else ">"
    machine = struct.unpack_from(f"{endian}H", body, 18)[0] if len(body) >= 20 else 0
    arch = _ELF_MACHINES.get(machine, f"machine {machine}")
    return Sniffed("elf", EXECUTABLE, f"ELF {bits} {arch} executable", risky=True)


def _zip(body: bytes) -> Sniffed:
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            names = archive.namelist()[:5000]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError):
        return Sniffed("zip", ARCHIVE, "ZIP archive (damaged or truncated)", risky=False)
    lowered = {n.lower() for n in names}
    if "androidmanifest.xml" in lowered and any(n.endswith(".dex") for n in lowered):
        return Sniffed("apk", APK, "Android application (APK)", True, ["AndroidManifest.xml"])
    if "[content_types].xml" in lowered:
        macros = [n for n in names if n.lower().endswith("vbaproject.bin")]
        app = next(
            (p for p in ("word/", "xl/", "ppt/") if any(n.startswith(p) for n in lowered)), ""
        )
        office = {"word/": "Word", "xl/": "Excel", "ppt/": "PowerPoint"}.get(app, "Office")
        if macros:
            return Sniffed("ooxml", DOCUMENT, f"{office} document with macros", True, macros)
        return Sniffed("ooxml", DOCUMENT, f"{office} document", False)
    if "meta-inf/manifest.mf" in lowered and any(n.endswith(".class") for n in lowered):
        return Sniffed("jar", EXECUTABLE, "Java archive (JAR)", True)
    risky = [n for n in names if _INNER_RISKY.search(n)]
    label = f"ZIP archive of {len(names)} file{'s' if len(names) != 1 else ''}"
    if risky:
        label += f" including {risky[0]}"
    return Sniffed("zip", ARCHIVE, label, bool(risky), risky[:20] or names[:20])


def _magic(body: bytes) -> Sniffed | None:
    head = body[:16]
    if head.startswith(b"MZ"):
        return _pe(body)
    if head.startswith(b"\x7fELF"):
        return _elf(body)
    if head[:4] in (
        b"\xfe\xed\xfa\xce",
        b"\xfe\xed\xfa\xcf",
        b"\xce\xfa\xed\xfe",
        b"\xcf\xfa\xed\xfe",
    ):
        return Sniffed("macho", EXECUTABLE, "Mach-O executable (macOS)", True)
    if head.startswith(b"\xca\xfe\xba\xbe") and len(body) > 8 and body[7] < 20:
        return Sniffed("macho", EXECUTABLE, "Mach-O universal binary (macOS)", True)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return _zip(body)
    if head.startswith(b"Rar!\x1a\x07"):
        return Sniffed("rar", ARCHIVE, "RAR archive", False)
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return Sniffed("7z", ARCHIVE, "7-Zip archive", False)
    if head.startswith(b"\x1f\x8b"):
        return Sniffed("gzip", ARCHIVE, "gzip archive", False)
    if head.startswith(b"BZh") and head[3:4].isdigit():
        return Sniffed("bzip2", ARCHIVE, "bzip2 archive", False)
    if head.startswith(b"\xfd7zXZ\x00"):
        return Sniffed("xz", ARCHIVE, "xz archive", False)
    if head.startswith(b"MSCF"):
        return Sniffed("cab", ARCHIVE, "Microsoft cabinet archive", False)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        marks = sorted({m.decode("latin-1").replace("\x00", "") for m in _OLE_MACRO.findall(body)})
        if b"M\x00S\x00I" in body[:65536] or b"Installer" in body[:65536]:
            return Sniffed("msi", EXECUTABLE, "Windows Installer package (MSI)", True)
        if marks:
            return Sniffed("ole", DOCUMENT, "OLE2 Office document with macros", True, marks[:10])
        return Sniffed("ole", DOCUMENT, "OLE2 Office document", False)
    if head.startswith(b"%PDF-"):
        active = sorted({m.decode() for m in _PDF_ACTIVE.findall(body)})
        return Sniffed("pdf", DOCUMENT, "PDF document", bool(active), active)
    if head.startswith(b"{\\rtf"):
        risky = b"\\objdata" in body or b"\\objupdate" in body
        return Sniffed("rtf", DOCUMENT, "RTF document", risky, ["embedded object"] if risky else [])
    if head.startswith(b"L\x00\x00\x00\x01\x14\x02\x00"):
        return Sniffed("lnk", EXECUTABLE, "Windows shortcut (LNK)", True)
    if head.startswith(b"dex\n"):
        return Sniffed("dex", EXECUTABLE, "Android DEX bytecode", True)
    if len(body) > 0x8006 and body[0x8001:0x8006] == b"CD001":
        return Sniffed("iso", ARCHIVE, "ISO 9660 disk image", True)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("png", None, "PNG image")
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("jpeg", None, "JPEG image")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return Sniffed("gif", None, "GIF image")
    if head.startswith(b"RIFF") and body[8:12] == b"WEBP":
        return Sniffed("webp", None, "WebP image")
    if head.startswith(b"\x00\x00\x01\x00"):
        return Sniffed("ico", None, "icon")
    if head.startswith((b"wOFF", b"wOF2")):
        return Sniffed("font", None, "web font")
    return None


def _looks_binary(body: bytes) -> bool:
    sample = body[:4096]
    if not sample:
        return False
    if b"\x00" in sample:
        return True
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return controls / len(sample) > 0.05


def sniff(
    body: bytes, content_type: str | bytes | None = None, url: str = "", filename: str = ""
) -> Sniffed:
    """Classify ``body``: magic bytes, then (for text) markup, scripts and labels."""
    declared = media_type(content_type)
    found = _magic(body)
    if found is not None:
        found.declared = declared
        return found
    if not body.strip():
        return Sniffed("empty", None, "empty body", declared=declared)
    ext = PurePosixPath(filename or urlsplit(url).path).suffix.lower()
    if _looks_binary(body):
        category = EXECUTABLE if ext in _EXECUTABLE_EXT else None
        return Sniffed("binary", category, "unrecognised binary data", bool(category), [], declared)
    head = body[:8192].lstrip(b"\xef\xbb\xbf")
    dropper = _DROPPER_TEXT.search(body[:2_000_000])
    scripty = ext in _SCRIPT_EXT or any(t in declared for t in _SCRIPT_TYPES)
    if _HTML_START.match(head) and not (scripty and not declared.endswith("html")):
        return Sniffed("html", "html", "HTML page", declared=declared)
    if dropper or scripty:
        label = "script"
        if ext:
            label = f"{ext[1:].upper()} script"
        details = [dropper.group().decode("latin-1").strip("( ")] if dropper else []
        return Sniffed("script", SCRIPT, label, bool(dropper), details, declared)
    if declared in ("text/html", "application/xhtml+xml") and _HTML_ANYWHERE.search(head):
        return Sniffed("html", "html", "HTML page", declared=declared)
    if declared in ("text/html", "application/xhtml+xml"):
        return Sniffed("html", "html", "HTML page (no markup)", declared=declared)
    return Sniffed("text", None, f"text ({declared or 'no type'})", declared=declared)
