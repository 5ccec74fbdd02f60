"""moto as AWS, in its own process: ``python -m leadpipe_local.motoserver --host H --port P``.

Each local runtime gets its own moto process, so two runtimes (a test's and the developer's) never share state, and
moto's work runs beside the dispatcher instead of competing with it for one interpreter.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()

    from moto.server import ThreadedMotoServer

    from leadpipe_local import motofix

    motofix.install()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
