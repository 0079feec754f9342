"""An RFC 3161 time-stamping authority on loopback: ``openssl ts -reply`` behind HTTP.

``POST /tsa`` with an ``application/timestamp-query`` body answers an
``application/timestamp-reply``, signed with the sandbox's TSA certificate
(``tls/tsa.pem``, issued by the throwaway CA), so evidence packages are
timestamped and verified for real in the tests and the demo. The reply carries
the TSA's certificate only (no ``certs`` chain): ``rfc3161-client`` refuses a
SignedData whose certificate SET is not in DER order, which OpenSSL's is not.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from aiohttp import web

from tocsin.sandbox.tls import Certs
from tocsin.sandbox.web import free_port

ADDRESS = "127.0.0.1"
MAX_QUERY = 64 * 1024
POLICY = "1.3.6.1.4.1.55555.15.1"  # a made-up policy OID: the sandbox's only one

_CONFIG = """\
[ tsa ]
default_tsa = sandbox

[ sandbox ]
dir = {dir}
serial = $dir/tsa-serial
crypto_device = builtin
signer_cert = {cert}
signer_key = {key}
signer_digest = sha256
default_policy = {policy}
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


class TsaServer:
    """One HTTP endpoint; each query is one ``openssl ts -reply`` run, one at a time."""

    def __init__(self, workdir: Path, certs: Certs) -> None:
        self.folder = workdir / "tsa"
        self.certs = certs
        self.port = 0
        self.queries = 0
        self._runner: web.AppRunner | None = None
        self._lock = asyncio.Lock()

    @property
    def url(self) -> str:
        return f"http://{ADDRESS}:{self.port}/tsa"

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "tsa-serial").write_text("01\n", encoding="ascii")
        (self.folder / "openssl.cnf").write_text(
            _CONFIG.format(
                dir=self.folder,
                cert=self.certs.tsa_cert_path,
                key=self.certs.tsa_key_path,
                policy=POLICY,
            ),
            encoding="ascii",
        )
        app = web.Application(client_max_size=MAX_QUERY)
        app.router.add_post("/tsa", self._reply)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port(ADDRESS)
        await web.TCPSite(self._runner, ADDRESS, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _reply(self, request: web.Request) -> web.Response:
        if request.content_type != "application/timestamp-query":
            return web.Response(status=415, text="expected application/timestamp-query")
        query = await request.read()
        async with self._lock:  # openssl increments one serial file
            self.queries += 1
            with tempfile.TemporaryDirectory(dir=self.folder) as tmp:
                query_path, reply_path = Path(tmp) / "q.tsq", Path(tmp) / "r.tsr"
                query_path.write_bytes(query)
                proc = await asyncio.create_subprocess_exec(
                    "openssl",
                    "ts",
                    "-reply",
                    "-config",
                    str(self.folder / "openssl.cnf"),
                    "-queryfile",
                    str(query_path),
                    "-out",
                    str(reply_path),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                )
                _, stderr = await proc.communicate()
                if proc.returncode != 0 or not reply_path.exists():
                    return web.Response(status=400, text=stderr.decode("utf-8", "replace")[:500])
                reply = reply_path.read_bytes()
        return web.Response(body=reply, content_type="application/timestamp-reply")
