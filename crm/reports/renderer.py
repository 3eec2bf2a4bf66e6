"""HTML to PDF with WeasyPrint, in a dedicated process, fetching nothing from outside.

WeasyPrint with the Noto CJK collections needs a few hundred MB in the process that renders.
Rendering in one long-lived helper process per web worker keeps the web worker small, and the
helper stays warm (fonts loaded) for the next dossier.

The URL fetcher serves `data:` URLs and the app's own static files (as `crm-static:/path`),
and refuses everything else: `file:`, network URLs, and so redirects too.
"""

from __future__ import annotations

import atexit
import multiprocessing
import resource
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

STATIC_SCHEME = "crm-static:"
STATIC_FOLDER = Path(__file__).resolve().parent.parent / "static"
STYLESHEET = Path(__file__).resolve().parent.parent / "templates" / "reports" / "dossier.css"


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


def render_in_this_process(html: str) -> tuple[bytes, list[str], float]:
    """The PDF, the URLs the fetcher refused, and this process's peak memory in MB."""
    from weasyprint import CSS, HTML

    fetcher = make_fetcher()
    stylesheet = CSS(string=STYLESHEET.read_text(encoding="utf-8"), url_fetcher=fetcher)
    pdf = HTML(string=html, base_url=STATIC_SCHEME + "/", url_fetcher=fetcher).write_pdf(
        stylesheets=[stylesheet]
    )
    return pdf, fetcher.refused, peak_memory_mb()


def peak_memory_mb() -> float:
    """This process's peak resident memory in MB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _get_pool() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
            atexit.register(_pool.shutdown, cancel_futures=True)
        return _pool


def helper_peak_memory_mb(timeout: float = 30) -> float | None:
    """The helper process's peak resident memory in MB, or None while no helper runs."""
    with _pool_lock:
        pool = _pool
    if pool is None:
        return None
    return pool.submit(peak_memory_mb).result(timeout=timeout)


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
