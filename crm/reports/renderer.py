"""HTML to PDF with WeasyPrint, in a dedicated process, fetching nothing from outside.

WeasyPrint with the Noto CJK collections needs a few hundred MB in the process that renders.
Rendering in one long-lived helper process per web worker keeps the web worker small, and the
helper stays warm (fonts loaded) for the next dossier.

The URL fetcher serves `data:` URLs and the app's own static files (as `crm-static:/path`),
and refuses everything else: `file:`, network URLs, and so redirects too.

What a render spends its time on, and what is kept between renders (issue #4's 0.5 s target):
layout and drawing are WeasyPrint's own work, in proportion to the document; subsetting the CJK
font is a fixed ~0.07 s. Around that, nothing is done twice: each thread keeps its font
configuration (Pango's loaded fonts) and the parsed stylesheet; the helper process freezes
what its warm-up render left alive, so the garbage collections during a render walk only that
render's objects; and the embedded font is compressed at zlib's default level, not level 9.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import gc
import multiprocessing
import queue
import resource
import threading
import zlib
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path

STATIC_SCHEME = "crm-static:"
STATIC_FOLDER = Path(__file__).resolve().parent.parent / "static"
STYLESHEET = Path(__file__).resolve().parent.parent / "templates" / "reports" / "dossier.css"

# pydyf compresses every stream at level 9. The biggest stream by far is the embedded font
# (~0.8 MB before compression: the subset keeps the CJK collection's glyph numbering); level 6
# compresses it in half the time to within 1 % of the size.
STREAM_COMPRESSION_LEVEL = 6

# Rendered once when the helper starts: loads WeasyPrint, Pango and the CJK face.
WARM_UP_HTML = (
    '<!doctype html><html lang="zh-CN"><body><h1>尽调摘要</h1><p>0–9 A–Z</p></body></html>'
)


def make_fetcher():
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class AppOnlyFetcher(URLFetcher):
        """Only `data:` URLs and files under the app's static folder; nothing else."""

        refused: list[str]

        def __init__(self):
            super().__init__(allowed_protocols={"data"}, allow_redirects=False, timeout=1)
            self.refused = []

        def fetch(self, url, headers=None):
            if url.startswith(STATIC_SCHEME):
                relative = url[len(STATIC_SCHEME) :].lstrip("/").split("?")[0]
                path = (STATIC_FOLDER / relative).resolve()
                if path.is_relative_to(STATIC_FOLDER) and path.is_file():
                    return URLFetcherResponse(url, path.read_bytes())
            elif url.startswith("data:"):
                return super().fetch(url, headers)
            self.refused.append(url)
            raise ValueError(f"refused by the dossier's URL fetcher: {url[:100]}")

    return AppOnlyFetcher()


_kept = threading.local()


@atexit.register
def _forget_fonts() -> None:
    """Drop this thread's font configuration while the interpreter still works: its __del__
    removes the folder of the stylesheet's @font-face files and fails once modules are gone."""
    for name in ("font_config", "stylesheet", "version"):
        if hasattr(_kept, name):
            delattr(_kept, name)


def fonts_and_stylesheet():
    """This thread's font configuration and parsed dossier stylesheet, made once and kept.

    One FontConfiguration for the stylesheet and every render, as WeasyPrint's documentation
    passes it to both `CSS` and `write_pdf`; a new one per render loads the CJK face into Pango
    again. Kept per thread: WeasyPrint does not promise these objects may be shared between
    threads. The stylesheet is parsed again when its file changes.
    """
    from weasyprint import CSS
    from weasyprint.text.fonts import FontConfiguration

    version = (STYLESHEET, STYLESHEET.stat().st_mtime_ns)
    if getattr(_kept, "version", None) != version:
        _kept.font_config = getattr(_kept, "font_config", None) or FontConfiguration()
        _kept.stylesheet = CSS(
            string=STYLESHEET.read_text(encoding="utf-8"),
            url_fetcher=make_fetcher(),
            font_config=_kept.font_config,
        )
        _kept.version = version
    return _kept.font_config, _kept.stylesheet


def compress_streams(document, pdf) -> None:
    """WeasyPrint's `finisher`: compress the streams made only of bytes (the embedded font
    among them) at STREAM_COMPRESSION_LEVEL; pydyf compresses the others as before."""
    import pydyf

    for stream in pdf.objects:
        if (
            isinstance(stream, pydyf.Stream)
            and stream.compress
            and "Filter" not in stream.extra
            and all(isinstance(item, bytes) for item in stream.stream)
        ):
            stream.stream = [zlib.compress(b"\n".join(stream.stream), STREAM_COMPRESSION_LEVEL)]
            stream.extra["Filter"] = "/FlateDecode"
            stream.compress = False


def render_in_this_process(html: str) -> tuple[bytes, list[str], float]:
    """The PDF, the URLs the fetcher refused, and this process's peak memory in MB."""
    from weasyprint import HTML

    font_config, stylesheet = fonts_and_stylesheet()
    fetcher = make_fetcher()
    pdf = HTML(string=html, base_url=STATIC_SCHEME + "/", url_fetcher=fetcher).write_pdf(
        stylesheets=[stylesheet], font_config=font_config, finisher=compress_streams
    )
    return pdf, fetcher.refused, peak_memory_mb()


def start_helper() -> None:
    """The helper process's initializer: a first small render loads WeasyPrint, the fonts and
    the stylesheet; then everything alive is frozen out of the garbage collector's sight
    (`gc.freeze`), so the collections that run during each dossier no longer walk WeasyPrint's
    and fontTools' own objects (about 5 % of a render)."""
    render_in_this_process(WARM_UP_HTML)
    gc.collect()
    gc.freeze()


def peak_memory_mb() -> float:
    """This process's peak resident memory in MB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """The CPU time this process has used so far (user and system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class RenderUnavailable(Exception):
    """No dossier this time: every helper stayed busy, or the render ran out of time (its
    helper was killed). Nothing was rendered; the user may try again. `message` is for users."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


BUSY_MESSAGE = "正在生成的尽调摘要较多，请稍后重试"
TIMEOUT_MESSAGE = "尽调摘要生成超时，请稍后重试"
FAILED_MESSAGE = "尽调摘要生成失败，请稍后重试"


class _Slot:
    """One helper process (a ProcessPoolExecutor of one worker), started on first use."""

    def __init__(self):
        self.pool: ProcessPoolExecutor | None = None

    def get_pool(self) -> ProcessPoolExecutor:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=start_helper,
            )
        return self.pool

    def pids(self) -> list[int]:
        processes = getattr(self.pool, "_processes", None) or {}
        return [p.pid for p in list(processes.values()) if p.is_alive()]

    def discard(self) -> None:
        """Kill the helper (a render that ran out of time would go on for minutes, holding
        hundreds of MB) and forget it: the next render starts a new one."""
        pool, self.pool = self.pool, None
        if pool is None:
            return
        # ProcessPoolExecutor has no public way to stop a running task; its processes are
        # ours, and killing them is what ends the render.
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for process in processes:
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(timeout=5)


class HelperPool:
    """At most `size` renders at once in this web worker, each in a helper process of its own.

    The free slots wait in a queue: a render takes one (waiting at most `wait` seconds, then
    RenderUnavailable), uses its helper, and gives it back. A render that takes longer than its
    timeout kills its helper, so nothing keeps working for a request that has given up.
    """

    def __init__(self, size: int):
        self.size = size
        self.slots = [_Slot() for _ in range(size)]
        self.free: queue.Queue[_Slot] = queue.Queue()
        for slot in self.slots:
            self.free.put(slot)

    @contextmanager
    def slot(self, wait: float):
        try:
            slot = self.free.get(timeout=max(wait, 0.001))
        except queue.Empty:
            raise RenderUnavailable(BUSY_MESSAGE) from None
        try:
            yield slot
        finally:
            self.free.put(slot)

    def render(self, html: str, timeout: float, wait: float) -> bytes:
        with self.slot(wait) as slot:
            future = slot.get_pool().submit(render_in_this_process, html)
            try:
                return future.result(timeout=timeout)[0]
            except concurrent.futures.TimeoutError:
                slot.discard()
                raise RenderUnavailable(TIMEOUT_MESSAGE) from None
            except BrokenProcessPool:
                # The helper died (killed, out of memory): start a new one next time.
                slot.discard()
                raise RenderUnavailable(FAILED_MESSAGE) from None

    def ask(self, question, timeout: float):
        """`question()` answered by the first started helper, or None while none runs."""
        for slot in self.slots:
            if slot.pool is not None:
                return slot.pool.submit(question).result(timeout=timeout)
        return None

    def pids(self) -> list[int]:
        return [pid for slot in self.slots for pid in slot.pids()]

    def shutdown(self) -> None:
        for slot in self.slots:
            slot.discard()


_helpers: HelperPool | None = None
_helpers_lock = threading.Lock()


def helpers(size: int = 1) -> HelperPool:
    """This web worker's helpers, `size` of them (made again if the configured size changed)."""
    global _helpers
    with _helpers_lock:
        if _helpers is None or _helpers.size != size:
            if _helpers is not None:
                _helpers.shutdown()
            _helpers = HelperPool(max(size, 1))
        return _helpers


@atexit.register
def _stop_helpers() -> None:
    with _helpers_lock:
        if _helpers is not None:
            _helpers.shutdown()


def _ask_helper(question, timeout: float):
    with _helpers_lock:
        pool = _helpers
    return pool.ask(question, timeout) if pool is not None else None


def helper_peak_memory_mb(timeout: float = 30) -> float | None:
    """The helper process's peak resident memory in MB, or None while no helper runs."""
    return _ask_helper(peak_memory_mb, timeout)


def helper_cpu_seconds(timeout: float = 30) -> float | None:
    """The helper process's CPU time so far, or None while no helper runs: what a render cost
    it, whatever else the machine was doing meanwhile (`make bench`)."""
    return _ask_helper(cpu_seconds, timeout)


def helper_pids() -> list[int]:
    """The process ids of this web worker's live helpers."""
    with _helpers_lock:
        pool = _helpers
    return pool.pids() if pool is not None else []


def render_pdf(
    html: str,
    in_subprocess: bool = True,
    timeout: float = 20,
    max_concurrent: int = 1,
    wait: float = 5,
) -> bytes:
    """Render `html` in a helper process: wait at most `wait` seconds for a free helper, then
    at most `timeout` seconds for the PDF, else RenderUnavailable. Both together stay under
    gunicorn's 30 s worker timeout."""
    if not in_subprocess:
        return render_in_this_process(html)[0]
    return helpers(max_concurrent).render(html, timeout, wait)
