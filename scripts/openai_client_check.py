#!/usr/bin/env python3
"""The official `openai` Python client (PyPI) against `supercluster serve`.

Starts the server on a free port with the given checkpoint, then runs a
completion, a chat completion and a streamed chat completion through the
client, checks what comes back (text, finish_reason, usage, a fixed seed
giving the same text twice, the streamed text equal to the whole one), and
stops the server with SIGTERM (it must exit 0).

    pip install openai            # once
    scripts/openai_client_check.py --checkpoint runs/grok-mini-fortunes [--binary build/supercluster]
"""
import argparse
import re
import signal
import subprocess
import sys
import threading

import openai

from serve_health import wait_ready


def start_server(binary, checkpoint):
    server = subprocess.Popen([binary, "serve", "--checkpoint", checkpoint, "--port", "0", "--slots", "2",
                               "--api-key", "check-key"], stderr=subprocess.PIPE, text=True)
    for line in server.stderr:
        sys.stderr.write(line)
        found = re.search(r"listening on (http://[^\s,]+)", line)
        if found:
            # Keep reading its log, so a full pipe never blocks the server.
            threading.Thread(target=lambda: [sys.stderr.write(rest) for rest in server.stderr], daemon=True).start()
            return server, found.group(1)
    raise SystemExit(f"server exited ({server.wait()}) before listening")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--binary", default="build/supercluster")
    args = parser.parse_args()
    server, base = start_server(args.binary, args.checkpoint)
    try:
        try:
            wait_ready(server, base)
        except RuntimeError as error:
            raise SystemExit(str(error))
        client = openai.OpenAI(base_url=base + "/v1", api_key="check-key")
        model = client.models.list().data[0].id
        print(f"model {model}")

        completion = client.completions.create(model=model, prompt="A computer", max_tokens=24, seed=7,
                                               temperature=0.8)
        again = client.completions.create(model=model, prompt="A computer", max_tokens=24, seed=7, temperature=0.8)
        choice = completion.choices[0]
        assert choice.finish_reason in ("stop", "length"), choice.finish_reason
        assert completion.usage.completion_tokens <= 24 and completion.usage.prompt_tokens > 0, completion.usage
        assert again.choices[0].text == choice.text, "the same seed gave different text"
        print(f"completion ({choice.finish_reason}, {completion.usage.completion_tokens} tokens): {choice.text!r}")

        messages = [{"role": "user", "content": "Tell me a fortune."}]
        chat = client.chat.completions.create(model=model, messages=messages, max_tokens=32, seed=3)
        reply = chat.choices[0].message
        assert reply.role == "assistant" and isinstance(reply.content, str), reply
        print(f"chat ({chat.choices[0].finish_reason}): {reply.content!r}")

        pieces, finish = [], None
        for chunk in client.chat.completions.create(model=model, messages=messages, max_tokens=32, seed=3,
                                                    stream=True):
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
                finish = chunk.choices[0].finish_reason or finish
        assert "".join(pieces) == reply.content, ("streamed text differs", "".join(pieces), reply.content)
        print(f"streamed {len(pieces)} chunks, finish_reason {finish}, same text as unstreamed")

        try:
            openai.OpenAI(base_url=base + "/v1", api_key="wrong").models.list()
            raise AssertionError("a wrong key was accepted")
        except openai.AuthenticationError:
            print("wrong key: 401")
        try:
            client.completions.create(model=model, prompt="x", n=2)
            raise AssertionError("n=2 was accepted")
        except openai.BadRequestError as error:
            print(f"n=2: 400 ({error.message})")
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
    assert code == 0, f"server exited {code} after SIGTERM"
    print("openai client check: OK")


if __name__ == "__main__":
    main()
