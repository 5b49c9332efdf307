"""`hmsearch web`: the search page, the episode pages with read-along, and the JSON API, served
by uvicorn over the same query service as the CLI (see ``app``). Needs the ``web`` extra
(starlette, uvicorn); nothing here is imported by `hmsearch --help`."""
