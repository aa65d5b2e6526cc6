#!/usr/bin/env python3
"""The chat page of `supercluster serve` (GET /) driven in headless Chromium.

Starts the server on a free port with the given checkpoint (its decode slowed
by the test hook SUPERCLUSTER_SERVE_STEP_DELAY_MS so that streaming can be
seen), starts headless Chromium with a temporary profile, and drives the page
over the Chrome DevTools Protocol as a user would: keyboard and mouse events.
It checks that

  - the page loads with no JavaScript exception or console error;
  - temperature and max tokens typed into the page's controls are the ones
    the page sends;
  - a message of two lines (Shift+Enter between them) sent with the Send
    button gets a reply that STREAMS: the reply's text, sampled while it is
    generated, grows through several lengths, each a prefix of the final
    text;
  - the tokens/s display shows a positive number;
  - a second message, sent with Enter, is answered with the conversation
    kept: all four turns are on the page, the second request carries the
    first question and the first reply, and the server counted more prompt
    tokens for it (/metrics);
  - no turn's text overflows its box, and the page does not scroll sideways;

then saves a screenshot, and goes on: "new chat" while a reply streams
empties the page, the server cancels that request (/metrics), and the next
message starts a conversation of its own; a request the server refuses
(temperature 500) shows an error turn and puts the question back in the
message box, and sending it again sends it once. Last it stops both (the
server must exit 0 on SIGTERM).
Exit status 0 only if every check passed; a failed check prints what was
expected and what was seen.

    apt-get install chromium        # once (Debian's package)
    pip install websocket-client    # once
    scripts/chat_page_check.py --checkpoint runs/grok-mini-fortunes \\
        [--binary build/supercluster] [--screenshot /tmp/chat_page.png]
"""
import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from serve_health import wait_ready

try:
    import websocket  # PyPI: websocket-client
except ImportError:
    websocket = None

FIRST_MESSAGE = "Tell me a fortune.\nA short one."
# A long word with no space in it: the page must wrap it, not overflow.
SECOND_MESSAGE = ("And what does https://example.com/a/very/long/path/with/no/spaces/in/it/at/all/"
                  "so/that/it/has/to/wrap/somewhere mean?")
FOURTH_MESSAGE = "Hello again."
REFUSED_MESSAGE = "Sent with temperature 500, refused."


class Checks:
    def __init__(self):
        self.failed = 0

    def check(self, name, ok, expected=None, seen=None):
        if ok:
            print(f"ok    {name}")
        else:
            self.failed += 1
            print(f"FAIL  {name}")
            if expected is not None:
                print(f"        expected: {expected}")
            if seen is not None:
                print(f"        seen:     {seen}")
        return ok


def start_server(binary, checkpoint, step_delay_ms, log_file):
    env = dict(os.environ, SUPERCLUSTER_SERVE_STEP_DELAY_MS=str(step_delay_ms))
    server = subprocess.Popen([binary, "serve", "--checkpoint", checkpoint, "--port", "0", "--slots", "2",
                               "--threads", "1"], stdout=log_file, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        with open(log_file.name) as log:
            found = re.search(r"listening on (http://[^\s,]+)", log.read())
        if found:
            return server, found.group(1)
        if server.poll() is not None:
            raise RuntimeError(f"the server exited ({server.returncode}) before listening")
        time.sleep(0.05)
    server.kill()
    server.wait()
    raise RuntimeError("the server did not say where it listens in 60 s")


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def start_chromium(chromium, profile, width, height, log_file):
    command = [chromium, "--headless=new", "--remote-debugging-port=0", f"--user-data-dir={profile}",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-gpu",
               "--disable-background-networking", "--disable-sync", "--mute-audio",
               f"--window-size={width},{height}", "about:blank"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    browser = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        # With port 0 Chromium picks one and writes it to the profile's
        # DevToolsActivePort (the port, then the browser's websocket path).
        active = os.path.join(profile, "DevToolsActivePort")
        deadline = time.time() + 60
        while True:
            if browser.poll() is not None:
                raise RuntimeError(f"Chromium exited ({browser.returncode}) at start")
            if time.time() > deadline:
                raise RuntimeError("Chromium did not open its DevTools port in 60 s")
            try:
                with open(active) as file:
                    port = int(file.readline())
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as reply:
                    pages = [t for t in json.load(reply) if t.get("type") == "page"]
                if pages:
                    return browser, pages[0]["webSocketDebuggerUrl"]
            except (OSError, ValueError):
                pass  # not written yet, or written half
            time.sleep(0.1)
    except BaseException:
        browser.kill()
        browser.wait()
        raise


class Cdp:
    """A DevTools Protocol session on one page: calls wait for their answer;
    events are kept in order for the checks to read."""

    def __init__(self, url):
        # No Origin header: Chromium refuses DevTools websockets from origins
        # it was not told to allow.
        self.ws = websocket.create_connection(url, suppress_origin=True, timeout=60)
        self.next_id = 0
        self.answers = {}
        self.events = []
        self.cond = threading.Condition()
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            while True:
                message = json.loads(self.ws.recv())
                with self.cond:
                    if "id" in message:
                        self.answers[message["id"]] = message
                    else:
                        self.events.append(message)
                    self.cond.notify_all()
        except Exception:  # the connection closed
            with self.cond:
                self.closed = True
                self.cond.notify_all()

    def call(self, method, timeout=60, **params):
        with self.cond:
            self.next_id += 1
            call_id = self.next_id
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.time() + timeout
        with self.cond:
            while call_id not in self.answers:
                if self.closed or not self.cond.wait(timeout=max(0, deadline - time.time())):
                    raise RuntimeError(f"no answer to {method}")
            answer = self.answers.pop(call_id)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def wait_event(self, method, timeout=60):
        deadline = time.time() + timeout
        with self.cond:
            while not any(e["method"] == method for e in self.events):
                if self.closed or not self.cond.wait(timeout=max(0, deadline - time.time())):
                    raise RuntimeError(f"no {method} event")

    def events_of(self, method):
        with self.cond:
            return [e["params"] for e in self.events if e["method"] == method]

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    # What a user does.
    def click(self, selector):
        box = self.evaluate(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        x, y = box
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
        self.call("Input.dispatchMouseEvent", type="mousePressed", x=x, y=y, button="left", clickCount=1)
        self.call("Input.dispatchMouseEvent", type="mouseReleased", x=x, y=y, button="left", clickCount=1)

    def type_into(self, selector, text):
        """Focuses the control, selects what is in it (Ctrl+A) and types text over it."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.dispatchKeyEvent", type="rawKeyDown", key="a", code="KeyA", windowsVirtualKeyCode=65,
                  modifiers=2, commands=["selectAll"])
        self.call("Input.dispatchKeyEvent", type="keyUp", key="a", code="KeyA", windowsVirtualKeyCode=65, modifiers=2)
        self.call("Input.insertText", text=text)

    def press_enter(self, shift=False):
        modifiers = 8 if shift else 0
        self.call("Input.dispatchKeyEvent", type="keyDown", key="Enter", code="Enter", windowsVirtualKeyCode=13,
                  text="\r", modifiers=modifiers)
        self.call("Input.dispatchKeyEvent", type="keyUp", key="Enter", code="Enter", windowsVirtualKeyCode=13,
                  modifiers=modifiers)


PAGE_STATE = """(() => {
  const turns = [...document.querySelectorAll('#log .turn')];
  const send = document.getElementById('send');
  return {
    turns: turns.map(t => ({ cls: t.className, text: t.textContent,
                            overflow: t.scrollWidth > t.clientWidth + 1 })),
    busy: send.disabled,
    speed: document.getElementById('speed').textContent,
    model: document.getElementById('model').textContent,
  };
})()"""


def send_and_watch(cdp, how, timeout):
    """Sends what is typed (with the Send button or Enter) and samples the last
    reply's text until the page is ready for the next message. Returns the
    samples taken while busy and the final state."""
    turns_before = len(cdp.evaluate(PAGE_STATE)["turns"])
    if how == "click":
        cdp.click("#send")
    else:
        cdp.press_enter()
    samples, saw_busy = [], False
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = cdp.evaluate(PAGE_STATE)
        if state["busy"]:
            saw_busy = True
            if state["turns"]:
                samples.append(state["turns"][-1]["text"])
        elif saw_busy or len(state["turns"]) > turns_before:
            return samples, state, saw_busy
        time.sleep(0.01)
    return samples, cdp.evaluate(PAGE_STATE), saw_busy


def chat_requests(cdp):
    bodies = []
    for event in cdp.events_of("Network.requestWillBeSent"):
        request = event["request"]
        if request["method"] == "POST" and request["url"].endswith("/v1/chat/completions"):
            data = request.get("postData")
            if data is None:
                data = cdp.call("Network.getRequestPostData", requestId=event["requestId"])["postData"]
            bodies.append(json.loads(data))
    return bodies


def check_streamed(checks, label, samples, final_text):
    lengths = sorted({len(s) for s in samples if 0 < len(s) < len(final_text)})
    shown = lengths if len(lengths) <= 8 else lengths[:4] + ["..."] + lengths[-3:]
    print(f"      {label}: {len(lengths)} distinct partial lengths seen {shown}, then the final {len(final_text)}")
    checks.check(f"{label}: the reply streamed (3 or more partial lengths seen while generating)",
                 len(lengths) >= 3, ">= 3 distinct lengths between 0 and the final length",
                 f"{lengths} (final {len(final_text)})")
    not_prefix = [s for s in samples if not final_text.startswith(s)]
    checks.check(f"{label}: every partial reply is a prefix of the final one", not not_prefix,
                 "prefixes of " + repr(final_text[:60]), not_prefix[:3])


def metric(base, name):
    with urllib.request.urlopen(base + "/metrics") as reply:
        text = reply.read().decode()
    found = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


def page_errors(cdp):
    """JavaScript exceptions and console errors so far."""
    errors = []
    for event in cdp.events_of("Runtime.exceptionThrown"):
        details = event["exceptionDetails"]
        errors.append(f"exception: {details.get('exception', {}).get('description') or details['text']}")
    errors += [f"log {e['entry']['level']}: {e['entry']['text']} ({e['entry'].get('url', '')})"
               for e in cdp.events_of("Log.entryAdded") if e["entry"]["level"] == "error"]
    errors += [f"console.{e['type']}: {[a.get('value', a.get('description')) for a in e['args']]}"
               for e in cdp.events_of("Runtime.consoleAPICalled") if e["type"] in ("error", "assert")]
    return errors


def turn_summary(turns):
    return [(t["cls"], t["text"][:60]) for t in turns]


def run_checks(cdp, base, args, checks):
    for domain in ("Page", "Runtime", "Log", "Network"):
        cdp.call(f"{domain}.enable")
    cdp.call("Emulation.setDeviceMetricsOverride", width=args.width, height=args.height, deviceScaleFactor=1,
             mobile=False)
    cdp.call("Page.navigate", url=base + "/")
    cdp.wait_event("Page.loadEventFired")
    for _ in range(100):  # the page asks /v1/models for the model's name
        state = cdp.evaluate(PAGE_STATE)
        if state["model"]:
            break
        time.sleep(0.05)
    checks.check("page loaded; model name shown", bool(state["model"]), "a model name in #model", state["model"])

    temperature, max_tokens = "0.7", str(args.max_tokens)
    cdp.type_into("#temperature", temperature)
    cdp.type_into("#max_tokens", max_tokens)
    values = cdp.evaluate("[document.getElementById('temperature').value,"
                          " document.getElementById('max_tokens').value]")
    checks.check("temperature and max tokens typed into the controls", values == [temperature, max_tokens],
                 [temperature, max_tokens], values)

    # First message: two lines (Shift+Enter between them), sent with the Send button.
    before = metric(base, "supercluster_prompt_tokens_total")
    first_line, second_line = FIRST_MESSAGE.split("\n")
    cdp.type_into("#message", first_line)
    cdp.press_enter(shift=True)
    cdp.call("Input.insertText", text=second_line)
    typed = cdp.evaluate("document.getElementById('message').value")
    checks.check("Shift+Enter starts a new line in the message box", typed == FIRST_MESSAGE, repr(FIRST_MESSAGE),
                 repr(typed))
    samples, state, saw_busy = send_and_watch(cdp, "click", args.timeout)
    after_first = metric(base, "supercluster_prompt_tokens_total")
    checks.check("first message: the page was busy while generating, then ready again",
                 saw_busy and not state["busy"], "busy, then not busy", f"saw busy {saw_busy}, busy {state['busy']}")
    turns = state["turns"]
    checks.check("first message: a user turn and an assistant turn",
                 [t["cls"] for t in turns] == ["turn user", "turn assistant"] and turns[0]["text"] == FIRST_MESSAGE,
                 f"['turn user' {FIRST_MESSAGE!r}, 'turn assistant' ...]", turn_summary(turns))
    reply = turns[-1]["text"] if turns else ""
    checks.check("first message: the reply is not empty", bool(reply), "some text", repr(reply))
    print(f"      first reply ({len(reply)} chars, {len(samples)} samples while generating): {reply[:100]!r}")
    check_streamed(checks, "first message", samples, reply)
    checks.check("first message: the reply does not start with whitespace (the template puts a space after "
                 "'Assistant:' when it is sent back)", reply == reply.lstrip(), repr(reply.lstrip()[:40]),
                 repr(reply[:40]))
    speed = re.fullmatch(r"(\d+(?:\.\d+)?) tokens/s", state["speed"].strip())
    checks.check("tokens/s shows a positive number", bool(speed) and float(speed.group(1)) > 0,
                 "'N.N tokens/s' with N > 0", repr(state["speed"]))
    print(f"      speed shown: {state['speed']!r}")
    left = cdp.evaluate("document.getElementById('message').value")
    checks.check("message box emptied after sending", left == "", "''", repr(left))

    # Second message: sent with Enter.
    cdp.type_into("#message", SECOND_MESSAGE)
    samples2, state, saw_busy = send_and_watch(cdp, "enter", args.timeout)
    after_second = metric(base, "supercluster_prompt_tokens_total")
    turns = state["turns"]
    expected_classes = ["turn user", "turn assistant", "turn user", "turn assistant"]
    checks.check("second message (Enter): all four turns on the page, in order",
                 [t["cls"] for t in turns] == expected_classes and turns[0]["text"] == FIRST_MESSAGE
                 and turns[1]["text"] == reply and turns[2]["text"] == SECOND_MESSAGE,
                 expected_classes, turn_summary(turns))
    reply2 = turns[-1]["text"] if turns else ""
    print(f"      second reply ({len(reply2)} chars, {len(samples2)} samples): {reply2[:100]!r}")
    check_streamed(checks, "second message", samples2, reply2)

    bodies = chat_requests(cdp)
    checks.check("two POSTs to /v1/chat/completions", len(bodies) == 2, 2, len(bodies))
    if bodies:
        first = bodies[0]
        checks.check("first request: stream, temperature and max_tokens from the controls",
                     first.get("stream") is True and first.get("temperature") == float(temperature)
                     and first.get("max_tokens") == int(max_tokens),
                     {"stream": True, "temperature": float(temperature), "max_tokens": int(max_tokens)},
                     {k: first.get(k) for k in ("stream", "temperature", "max_tokens")})
        checks.check("first request: the one user message", first.get("messages") ==
                     [{"role": "user", "content": FIRST_MESSAGE}], "[user: first message]", first.get("messages"))
    if len(bodies) > 1:
        expected = [{"role": "user", "content": FIRST_MESSAGE}, {"role": "assistant", "content": reply},
                    {"role": "user", "content": SECOND_MESSAGE}]
        checks.check("second request carries the conversation (question, reply, question)",
                     bodies[1].get("messages") == expected, expected, bodies[1].get("messages"))
    if None not in (before, after_first, after_second):
        first_prompt, second_prompt = after_first - before, after_second - after_first
        checks.check("/metrics: the second request's prompt is longer than the first's", second_prompt > first_prompt,
                     f"> {first_prompt:g} prompt tokens", f"{second_prompt:g}")
    else:
        checks.check("/metrics has supercluster_prompt_tokens_total", False, "the counter", None)

    overflowing = turn_summary([t for t in turns if t["overflow"]])
    checks.check("no turn's text overflows its box", not overflowing, "none", overflowing)
    page_overflow = cdp.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")
    checks.check("the page does not scroll sideways", not page_overflow, False, page_overflow)
    errors = page_errors(cdp)
    checks.check("no JavaScript exception or console error", not errors, "none", errors)

    shot = cdp.call("Page.captureScreenshot", format="png")
    with open(args.screenshot, "wb") as out:
        out.write(base64.b64decode(shot["data"]))
    print(f"      screenshot: {args.screenshot}")

    # "new chat" while a reply streams: the page empties, the dropped reply
    # never comes back, the server cancels it, and the next message starts a
    # conversation of its own.
    cancelled = metric(base, "supercluster_requests_cancelled_total")
    cdp.type_into("#message", "A third message, dropped while its reply streams.")
    cdp.click("#send")
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        state = cdp.evaluate(PAGE_STATE)
        if state["turns"] and state["turns"][-1]["text"]:
            break
        time.sleep(0.01)
    cdp.click("#clear")
    time.sleep(1.0)  # time for the dropped stream to write into the page, were it still read
    state = cdp.evaluate(PAGE_STATE)
    checks.check("new chat while streaming: the page is empty and ready",
                 not state["turns"] and not state["busy"] and not state["speed"],
                 "no turns, not busy, no speed", f"{turn_summary(state['turns'])}, busy {state['busy']}, "
                 f"speed {state['speed']!r}")
    for _ in range(100):
        now = metric(base, "supercluster_requests_cancelled_total")
        if cancelled is not None and now is not None and now > cancelled:
            break
        time.sleep(0.1)
    checks.check("new chat while streaming: the server cancelled the dropped request",
                 cancelled is not None and now is not None and now > cancelled,
                 f"supercluster_requests_cancelled_total > {cancelled}", now)
    cdp.type_into("#message", FOURTH_MESSAGE)
    _, state, _ = send_and_watch(cdp, "enter", args.timeout)
    bodies = chat_requests(cdp)
    checks.check("new chat: the next request holds only its own message",
                 len(bodies) == 4 and bodies[3].get("messages") == [{"role": "user", "content": FOURTH_MESSAGE}]
                 and [t["cls"] for t in state["turns"]] == ["turn user", "turn assistant"],
                 f"[user: {FOURTH_MESSAGE!r}] and two turns",
                 f"{bodies[-1].get('messages') if bodies else None}, {turn_summary(state['turns'])}")

    # A request the server refuses (temperature 500): an error turn says why,
    # and the question goes back into the message box, out of the conversation.
    cdp.type_into("#temperature", "500")
    cdp.type_into("#message", REFUSED_MESSAGE)
    _, state, _ = send_and_watch(cdp, "click", args.timeout)
    left = cdp.evaluate("document.getElementById('message').value")
    turns = state["turns"]
    checks.check("a refused request: an error turn naming temperature, the question back in the box",
                 [t["cls"] for t in turns] == ["turn user", "turn assistant", "turn error"]
                 and "temperature" in turns[-1]["text"] and left == REFUSED_MESSAGE and not state["busy"],
                 "[user, assistant, error ('temperature' ...)], the box holding the question",
                 f"{turn_summary(turns)}, box {left!r}")
    print(f"      refused: {turns[-1]['text'] if turns else None!r}")
    cdp.type_into("#temperature", temperature)
    _, state, _ = send_and_watch(cdp, "click", args.timeout)  # the question is still in the box
    bodies = chat_requests(cdp)
    checks.check("sent again after the refusal: the conversation holds the question once",
                 bodies and [m["role"] for m in bodies[-1].get("messages", [])] == ["user", "assistant", "user"]
                 and bodies[-1]["messages"][-1]["content"] == REFUSED_MESSAGE
                 and [t["cls"] for t in state["turns"]] == ["turn user", "turn assistant", "turn error", "turn user",
                                                           "turn assistant"],
                 "messages [user, assistant, user]; turns [user, assistant, error, user, assistant]",
                 f"{bodies[-1].get('messages') if bodies else None}, {turn_summary(state['turns'])}")
    # The refusal is logged by Chromium as a failed load (status 400); nothing else may be.
    errors = [e for e in page_errors(cdp) if "status of 400" not in e]
    checks.check("no JavaScript exception or console error after all that", not errors, "none", errors)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--binary", default="build/supercluster")
    parser.add_argument("--screenshot", default=os.path.join(tempfile.gettempdir(), "chat_page.png"))
    parser.add_argument("--chromium", default=None, help="the browser (default: chromium on the PATH)")
    parser.add_argument("--step-delay-ms", type=int, default=30,
                        help="SUPERCLUSTER_SERVE_STEP_DELAY_MS of the server: slows decode so streaming shows")
    parser.add_argument("--max-tokens", type=int, default=48, help="typed into the page's max tokens")
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for one reply")
    args = parser.parse_args()

    chromium = shutil.which(args.chromium) if args.chromium else find_chromium()
    if not chromium:
        print("chromium not found. Install Debian's package:\n    apt-get install -y chromium", file=sys.stderr)
        return 2
    if websocket is None:
        print("the Python package websocket-client is missing:\n    pip install websocket-client", file=sys.stderr)
        return 2
    if not os.access(args.binary, os.X_OK):
        print(f"{args.binary} is not an executable; build it with scripts/build.sh supercluster", file=sys.stderr)
        return 2
    version = subprocess.run([chromium, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"browser: {version}")

    work = tempfile.mkdtemp(prefix="chat_page_check.")
    server_log = open(os.path.join(work, "server.log"), "w")
    browser_log = open(os.path.join(work, "chromium.log"), "w")
    checks = Checks()
    server = browser = cdp = None
    try:
        server, base = start_server(args.binary, args.checkpoint, args.step_delay_ms, server_log)
        wait_ready(server, base)
        print(f"server: {base} (step delay {args.step_delay_ms} ms)")
        browser, page_ws = start_chromium(chromium, os.path.join(work, "profile"), args.width, args.height,
                                          browser_log)
        cdp = Cdp(page_ws)
        run_checks(cdp, base, args, checks)
    except Exception as error:  # a check that could not even run
        checks.check("the checks ran to the end", False, "no error", f"{type(error).__name__}: {error}")
    finally:
        if cdp:
            cdp.ws.close()
        if browser:
            browser.terminate()
            try:
                browser.wait(timeout=20)
            except subprocess.TimeoutExpired:
                browser.kill()
        if server and server.poll() is not None:
            checks.check("the server ran until told to stop", False, "running", f"exited {server.returncode}")
        elif server:
            server.send_signal(signal.SIGTERM)
            try:
                code = server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                code = "none (killed after 60 s)"
            checks.check("server exits 0 on SIGTERM", code == 0, 0, code)
        server_log.close()
        browser_log.close()
    if checks.failed:
        with open(server_log.name) as log:
            tail = log.readlines()[-10:]
        print("server log, last lines:\n" + "".join("    " + line for line in tail), end="")
        print(f"chat page check: {checks.failed} check(s) FAILED (logs in {work})")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("chat page check: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
