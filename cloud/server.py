"""The gunicorn worker and access log every Stratus API server runs with
(named in cloud/gunicorn_conf.py).

gunicorn's threaded worker hands each request between threads three times:
the poller thread sees the kept-alive socket readable and queues it to a
pool thread, which answers and queues the connection back through a pipe to
the poller thread, which watches the socket again. On this 2-core machine
those hand-offs (thread wake-ups, the pipe, the selector calls) cost more
than a token validation itself. A client calling again at once (a service
validating tokens, a CLI or SDK making its next call, a benchmark) is
answered here by the thread that answered it last, as a thread of Apache's
worker MPM keeps its kept-alive connection; an idle connection still goes
back to the poller after KEEPALIVE_LINGER_SECONDS, so it holds no thread,
and a thread waits only while another pool thread is free for other
connections' requests."""
import select
import threading

from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker

# How long a pool thread waits on its connection for the client's next
# request before handing the connection back to the poller. Short: a thread
# waiting here is not answering another connection's request.
KEEPALIVE_LINGER_SECONDS = 0.002


class KeepAliveThreadWorker(ThreadWorker):
    def init_process(self):
        self.busy_threads = 0
        self.busy_lock = threading.Lock()
        super().init_process()

    def handle(self, conn):
        with self.busy_lock:
            self.busy_threads += 1
        try:
            while True:
                keepalive = super().handle(conn)
                if keepalive is not True or not self.alive or not self.next_request_waiting(conn):
                    return keepalive
        finally:
            with self.busy_lock:
                self.busy_threads -= 1

    def may_linger(self):
        """Whether a pool thread is free beside this one and no request waits for one."""
        queued = getattr(self.tpool, "_work_queue", None)
        return self.busy_threads < self.cfg.threads and not (queued is not None and queued.qsize())

    def next_request_waiting(self, conn):
        """Whether the client sent its next request on this connection, or
        does within KEEPALIVE_LINGER_SECONDS while other threads are free."""
        if conn.is_http2:
            return False
        if conn.parser.unreader.buf.getvalue():
            return True  # read ahead with the last request's body
        pending = getattr(conn.sock, "pending", None)  # TLS: decrypted bytes already read
        if pending is not None and pending():
            return True
        if not self.may_linger():
            return False
        poller = select.poll()
        poller.register(conn.sock, select.POLLIN)
        try:
            return bool(poller.poll(KEEPALIVE_LINGER_SECONDS * 1000))
        except OSError:
            return False


class AccessLogger(Logger):
    """gunicorn's access log line in its default (Apache combined) format,
    written without building the dictionary of every request header,
    response header and environment variable that gunicorn makes for
    custom formats: that took longer than a token validation."""

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        if self.cfg.access_log_format != self.cfg.settings["access_log_format"].default:
            return super().access(resp, req, environ, request_time)
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        sent = getattr(resp, "sent", None)
        line = (f'{environ.get("REMOTE_ADDR", "-")} - {self._get_user(environ) or "-"} {self.now()} '
                f'"{environ["REQUEST_METHOD"]} {environ["RAW_URI"]} {environ["SERVER_PROTOCOL"]}" {status} '
                f'{sent if sent is not None else "-"} "{environ.get("HTTP_REFERER", "-")}" '
                f'"{environ.get("HTTP_USER_AGENT", "-")}"')
        try:
            self.access_log.info("%s", line)
        except Exception:
            self.exception("access log")

