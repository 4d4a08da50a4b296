"""What `make run` serves: streamlit_app.py as a Streamlit ASGI app whose pages tell the browser where the server is.

Opened at a page's address (/results?run=ID), Streamlit's frontend does not know the server's base path, so it
probes /results/_stcore/health and /results/_stcore/host-config first and logs their 404s before it tries /.
The frontend skips the probe when `window.__streamlit.BACKEND_BASE_URL` is set, which this app's pages do: the
studio is always served at the root of its host."""

from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

ENTRY = Path(__file__).parent / "streamlit_app.py"
BASE_URL_SCRIPT = b"<script>window.__streamlit = {BACKEND_BASE_URL: window.location.origin + '/'};</script>"
NOT_PAGES = ("/_stcore/", "/static/", "/media/", "/component/", "/app/static/", "/favicon.png", "/manifest.json")


class BaseUrlInPages:
    """ASGI middleware: adds BASE_URL_SCRIPT to the head of every HTML page Streamlit sends (its index.html)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"].startswith(NOT_PAGES):
            return await self.app(scope, receive, send)
        # The page is small: ask for it uncompressed, so the script can go in as bytes.
        headers = [(k, v) for k, v in scope["headers"] if k != b"accept-encoding"]
        await self.app({**scope, "headers": headers}, receive, _WithScript(send))


class _WithScript:
    """The `send` of one response: holds an HTML body until it is complete and puts the script into its head."""

    def __init__(self, send):
        self.send, self.start, self.body = send, None, b""

    async def __call__(self, message):
        if message["type"] == "http.response.start":
            html = any(k == b"content-type" and v.startswith(b"text/html") for k, v in message["headers"])
            self.start = message if html else None
            return None if html else await self.send(message)
        if self.start is None:
            return await self.send(message)
        self.body += message.get("body", b"")
        if message.get("more_body"):
            return None
        body = self.body.replace(b"<head>", b"<head>" + BASE_URL_SCRIPT, 1)
        # Its length changed, and its cache validators describe the file on disk, not this page.
        headers = [(k, v) for k, v in self.start["headers"] if k not in (b"content-length", b"etag", b"last-modified")]
        await self.send({**self.start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await self.send({"type": "http.response.body", "body": body})


app = st.App(ENTRY, middleware=[Middleware(BaseUrlInPages)])
