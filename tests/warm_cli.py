"""A warm ``augtool`` for the docs checks: every call a fresh process, none of them importing.

Each ``augtool`` a documented command runs would start a Python that imports the
command line (click, numpy, OpenCV, the library): about half a CPU-second before
it does anything, and test_docs runs some forty of them. Here one server
process (:func:`serve`) imports all that once; each call is a small client
(this file run as a script, ``python -S``, stdlib only) that hands the server
its arguments, working folder, environment and its own stdin, stdout and stderr,
and the server forks a child that runs ``cli.main`` in them and exits as the
``augtool`` script would (its exit status, or death by a signal, is the
client's). So each command still runs in a process of its own, with its own
file descriptors, folder and environment: the output, exit status, buffering
and the order of stdout and stderr lines are those of a fresh process. Signals
sent to the client (``kill $!``) are passed to the child.

What differs from ``python -c "import cli; cli.main()"``: the modules of
:data:`WARM` were imported before the call, with the server's environment
(the block's own but for ``PATH``, see ``tests/test_docs.py``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

#: Modules the server imports before it forks: the command line and what its
#: commands import when they run (see augtool/commands/*.py); not torch.
WARM = (
    "cli",
    "augtool.api",
    "augtool.tools.cells",
    "augtool.engine.expand",
    "augtool.tools.preview",
    "augtool.pipeline.recipe_toml",
    "augtool.commands.summary",
    "augtool.tools.synth",
    "augtool.engine.verify",
    "augtool.commands.terminal",
    "model.config",
    "tomllib",
)
#: The variable that names the server's socket (removed from the commands' environment).
SOCKET_VARIABLE = "AUGTOOL_WARM_SOCKET"
#: Signals the client passes on to the command.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1)


def _read_line(conn: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            raise ConnectionError("the warm augtool server closed the connection")
        line += chunk
    return line[:-1]


def client() -> None:
    """Run ``augtool ARGS`` through the server named by ``$AUGTOOL_WARM_SOCKET``; exit as it did."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(os.environ[SOCKET_VARIABLE])
    body = json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)})
    data = body.encode()
    socket.send_fds(conn, [len(data).to_bytes(8, "big")], [0, 1, 2])
    conn.sendall(data)
    pid = int(_read_line(conn)[1:])
    for number in FORWARDED:
        signal.signal(number, lambda received, _frame: os.kill(pid, received))
    status = int(_read_line(conn)[1:])
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    sys.exit(os.waitstatus_to_exitcode(status))


def serve(path: str) -> None:
    """Import :data:`WARM`, listen on the Unix socket ``path`` and serve calls until killed."""
    import importlib

    for name in WARM:
        importlib.import_module(name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".part")
    listener.listen(64)
    os.rename(path + ".part", path)  # the socket appears when it accepts calls

    def stop(_number: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            conn, _ = listener.accept()
            if os.fork() == 0:
                listener.close()
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                _handle(conn)
            conn.close()
            while _reap(os.WNOHANG):
                pass
    finally:
        # Wait for every call, so that their CPU time counts as this process's children's.
        while _reap(0):
            pass


def _reap(options: int) -> bool:
    """Wait for one finished child; False when there is none (yet)."""
    try:
        return os.waitpid(-1, options)[0] != 0
    except ChildProcessError:
        return False


def _handle(conn: socket.socket) -> None:
    """One call: fork the command's process, tell the client its id, then its exit status."""
    head, fds, _, _ = socket.recv_fds(conn, 8, 3)
    size = int.from_bytes(head, "big")
    data = b""
    while len(data) < size:
        data += conn.recv(size - len(data))
    call = json.loads(data)
    pid = os.fork()
    if pid == 0:
        conn.close()
        _run_command(call, fds)
    for fd in fds:
        os.close(fd)
    conn.sendall(f"P{pid}\n".encode())
    _, status = os.waitpid(pid, 0)
    conn.sendall(f"S{status}\n".encode())
    os._exit(0)


def _run_command(call: dict, fds: list[int]) -> None:
    """In the command's process: its descriptors, folder, environment and signals, then main."""
    import atexit
    import io
    import threading
    import traceback

    from tests.child_process import fresh_process_signals, main_exit_status

    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(call["cwd"])
    env = dict(call["env"])
    env.pop(SOCKET_VARIABLE, None)
    os.environ.clear()
    os.environ.update(env)
    fresh_process_signals()
    # The standard streams as a fresh Python makes them: stdout line-buffered only on
    # a terminal, stderr always line-buffered (Python 3.9+).
    encoding = sys.__stdout__.encoding if sys.__stdout__ else "utf-8"
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding)
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(1, "w", closefd=False)),
        encoding,
        line_buffering=os.isatty(1),
    )
    sys.stderr = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(2, "w", closefd=False)),
        encoding,
        errors="backslashreplace",
        line_buffering=True,
    )
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
    sys.argv = ["-c", *call["argv"]]
    try:
        code = main_exit_status(call["argv"])
    except BaseException:
        traceback.print_exc()
        code = 1
    threading._shutdown()  # what Python's own shutdown does: wait for non-daemon threads
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 120  # as Python does when flushing stdout fails at exit
    os._exit(code)


if __name__ == "__main__":
    client()
