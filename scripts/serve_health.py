"""Waiting for a `supercluster serve` the calling script started: shared by
openai_client_check.py and chat_page_check.py."""
import time
import urllib.request


def wait_ready(server, base):
    """Returns once GET base/health answers 200 (the checkpoint is loaded).
    Raises RuntimeError if the server process exits first, or after 60 s."""
    for _ in range(600):
        if server.poll() is not None:
            raise RuntimeError(f"the server exited ({server.returncode}) before it was ready")
        try:
            with urllib.request.urlopen(base + "/health") as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server not ready after 60 s")
