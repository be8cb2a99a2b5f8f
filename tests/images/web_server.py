"""A local HTTP server (loopback only) for web-download imports: it serves
what a test puts in its routes and records every path asked for."""
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Files(BaseHTTPRequestHandler):
    """Serves self.server.routes: path -> ("data", bytes),
    ("redirect", location), ("endless", chunk) (no length: the chunk
    again and again, up to the server's endless_bytes), ("slow", (bytes,
    pause)) (a pause after every 64 KiB) or ("gated", (bytes, event)) (the
    second half only once the test sets the event)."""

    def do_GET(self):
        kind, value = self.server.routes.get(self.path, ("missing", None))
        self.server.requests.append(self.path)
        if kind == "data":
            self.send_response(200)
            self.send_header("Content-Length", str(len(value)))
            self.end_headers()
            self.wfile.write(value)
        elif kind == "redirect":
            self.send_response(302)
            self.send_header("Location", value)
            self.end_headers()
        elif kind == "endless":
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(self.server.endless_bytes // len(value)):
                    self.wfile.write(value)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif kind == "slow":  # (bytes, seconds between 64 KiB pieces)
            body, pause = value
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for start in range(0, len(body), 2**16):
                    self.wfile.write(body[start:start + 2**16])
                    time.sleep(pause)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif kind == "gated":  # (bytes, threading.Event): the first half, then the rest once the event is set
            body, gate = value
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                gate.wait(timeout=120)
                self.wfile.write(body[len(body) // 2:])
            except (BrokenPipeError, ConnectionResetError):
                pass
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


@contextmanager
def serve_files(endless_bytes=2**26):
    """The server, its base URL in `.base`; `endless` routes send
    `endless_bytes` before they stop."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    server.routes, server.requests, server.endless_bytes = {}, [], endless_bytes
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
