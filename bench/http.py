"""Two HTTP/1.1 clients for the load generator, both keep-alive over loopback.

``RawClient`` writes pre-encoded requests on asyncio streams and reads only the status line,
the headers and a Content-Length body: a few microseconds of Python per request, so the
generator is not the bottleneck it would be with httpx (measured side by side by the
``loadgen`` scenario). ``HttpxClient`` is the reference implementation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx


class RawClient:
    def __init__(self, host: str, port: int, *, connections: int = 64) -> None:
        self.host, self.port = host, port
        self._idle: asyncio.LifoQueue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.LifoQueue())
        self._slots = asyncio.Semaphore(connections)
        self._open: list[asyncio.StreamWriter] = []

    def encode(self, method: str, path: str, body: bytes, headers: Mapping[str, str]) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def send(self, raw: bytes) -> int:
        """Send one pre-encoded request; the response status (the body is read and dropped).

        As httpx and urllib3 do, a request on a pooled connection that the server had
        already closed (uvicorn drops idle keep-alive connections after 5 s) and that got
        no byte of answer is sent again once on a new connection; the retry's time counts.
        """
        async with self._slots:
            reader, writer, reused = await self._connection()
            try:
                status, keep = await _exchange(reader, writer, raw)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                writer.close()
                if not reused or getattr(exc, "partial", b""):
                    raise
                reader, writer, _ = await self._connection(fresh=True)
                try:
                    status, keep = await _exchange(reader, writer, raw)
                except BaseException:
                    writer.close()
                    raise
            except BaseException:
                writer.close()
                raise
            if keep:
                self._idle.put_nowait((reader, writer))
            else:
                writer.close()
            return status

    async def _connection(self, fresh: bool = False
                          ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        if not fresh and not self._idle.empty():
            return (*self._idle.get_nowait(), True)
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self._open.append(writer)
        return reader, writer, False

    async def aclose(self) -> None:
        for writer in self._open:
            writer.close()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    raw: bytes) -> tuple[int, bool]:
    writer.write(raw)
    return await _read_response(reader)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, keep = 0, True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
        elif name == b"transfer-encoding":
            raise RuntimeError("chunked responses are not supported by RawClient")
    if length:
        await reader.readexactly(length)
    return status, keep


class HttpxClient:
    """The same interface over httpx.AsyncClient (reference; slower per request)."""

    def __init__(self, host: str, port: int, *, connections: int = 64) -> None:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._client = httpx.AsyncClient(base_url=f"http://{host}:{port}", limits=limits,
                                         timeout=30.0)

    def encode(self, method: str, path: str, body: bytes,
               headers: Mapping[str, str]) -> tuple[str, str, bytes, dict[str, str]]:
        return method, path, body, dict(headers)

    async def send(self, raw: tuple[str, str, bytes, dict[str, str]]) -> int:
        method, path, body, headers = raw
        return (await self._client.request(method, path, content=body, headers=headers)).status_code

    async def aclose(self) -> None:
        await self._client.aclose()


def make_client(kind: str, host: str, port: int, *, connections: int = 64
                ) -> RawClient | HttpxClient:
    if kind == "httpx":
        return HttpxClient(host, port, connections=connections)
    return RawClient(host, port, connections=connections)
