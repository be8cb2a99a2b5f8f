"""Runs the installed `openstack` CLI (openstackclient.shell.main, what the
console script calls) in processes forked from one that has already imported
it. Importing the client and its plugins takes ~2.5 s, and the suite runs it
hundreds of times; a forked child starts in ~0.1 s and runs exactly the same
code with its own arguments, environment, stdout and stderr.

`python tests/openstack_cli.py SOCKET` is the forking process: it imports the
client, then forks a child per connection on the Unix socket. A child reads
one request (JSON: args, env, cwd), sends its pid, runs the CLI with fds 1 and
2 on temporary files, and sends back the exit code and both outputs."""
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from importlib import metadata


def _read_line(reader):
    line = reader.readline()
    if not line.endswith(b"\n"):
        raise ConnectionError("the openstack CLI's process ended without answering")
    return line


def _preload():
    """Imports the client and every command module its plugins declare, so a
    child finds them in memory."""
    importlib.import_module("openstackclient.shell")
    for entry_point in (point for dist in metadata.distributions() for point in dist.entry_points):
        if entry_point.group.startswith("openstack.") and ":" in entry_point.value:
            try:
                importlib.import_module(entry_point.module)
            except Exception:  # a plugin that fails to import fails the same way in the real CLI
                pass


def _run_child(conn):
    request = json.loads(_read_line(conn.makefile("rb")))
    conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    outputs = [tempfile.TemporaryFile(), tempfile.TemporaryFile()]
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(outputs[0].fileno(), 1)
    os.dup2(outputs[1].fileno(), 2)
    sys.argv = ["openstack", *request["args"]]
    from openstackclient import shell

    try:
        code = shell.main(request["args"])
    except SystemExit as exit:
        code = exit.code
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    sys.stdout.flush()
    sys.stderr.flush()
    texts = []
    for output in outputs:
        output.seek(0)
        texts.append(output.read().decode(errors="replace"))
    conn.sendall(json.dumps({"returncode": code, "stdout": texts[0], "stderr": texts[1]}).encode() + b"\n")
    conn.close()
    os._exit(0)


def serve(path):
    _preload()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                _run_child(conn)
            finally:
                os._exit(1)
        conn.close()


class ForkedCli:
    """The client side: run(args, env, timeout) gives a CompletedProcess."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "openstack-cli.sock")
        self.process = subprocess.Popen([sys.executable, __file__, self.path], stdout=subprocess.PIPE, text=True)
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the openstack CLI's forking process did not start")

    def run(self, args, env, timeout):
        command = ["openstack", *args]
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(self.path)
            conn.sendall(json.dumps({"args": list(args), "env": env, "cwd": os.getcwd()}).encode() + b"\n")
            deadline = time.monotonic() + timeout
            conn.settimeout(timeout)
            reader = conn.makefile("rb")
            pid = json.loads(_read_line(reader))["pid"]
            try:
                conn.settimeout(max(deadline - time.monotonic(), 0.1))
                answer = json.loads(_read_line(reader))
            except socket.timeout:
                os.kill(pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired(command, timeout)
        return subprocess.CompletedProcess(command, answer["returncode"], answer["stdout"], answer["stderr"])

    def close(self):
        self.process.terminate()
        self.process.wait(timeout=10)


if __name__ == "__main__":
    serve(sys.argv[1])
