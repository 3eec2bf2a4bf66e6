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
import gc
import multiprocessing
import resource
import threading
import zlib
from concurrent.futures import ProcessPoolExecutor
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


_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _get_pool() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=start_helper,
            )
            atexit.register(_pool.shutdown, cancel_futures=True)
        return _pool


def _ask_helper(question, timeout: float):
    with _pool_lock:
        pool = _pool
    if pool is None:
        return None
    return pool.submit(question).result(timeout=timeout)


def helper_peak_memory_mb(timeout: float = 30) -> float | None:
    """The helper process's peak resident memory in MB, or None while no helper runs."""
    return _ask_helper(peak_memory_mb, timeout)


def helper_cpu_seconds(timeout: float = 30) -> float | None:
    """The helper process's CPU time so far, or None while no helper runs: what a render cost
    it, whatever else the machine was doing meanwhile (`make bench`)."""
    return _ask_helper(cpu_seconds, timeout)


def render_pdf(html: str, in_subprocess: bool = True, timeout: float = 25) -> bytes:
    """Render `html`; the timeout stays under gunicorn's 30 s worker timeout."""
    if not in_subprocess:
        return render_in_this_process(html)[0]
    try:
        return _get_pool().submit(render_in_this_process, html).result(timeout=timeout)[0]
    except Exception:
        # A helper that died (killed, out of memory) breaks the pool: start a new one next time.
        global _pool
        with _pool_lock:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None
        raise
