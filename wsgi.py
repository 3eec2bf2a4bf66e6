"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

import gc

from crm import create_app

app = create_app()

# What the app has built so far (modules, mappers, routes) lives as long as the process:
# moved out of the garbage collector's sight, the full collections that now and then run
# during a request no longer walk it (the list's p99 under load fell from ~52 to ~40 ms).
gc.collect()
gc.freeze()
# A page allocates tens of thousands of short-lived objects (rows, template strings): with the
# default first-generation threshold (700) the collector ran ~11 times per 300 list pages in
# its oldest generation and many more in the youngest; at 10,000 the list's CPU per request
# fell 3–4 % (in-process, 300 pages, five rounds), and the ratio `make bench` measures rose
# (docs/performance.md, sixth session).
gc.set_threshold(10_000, 10, 10)
