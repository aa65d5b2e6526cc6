#include "serve/chat_page.h"

namespace sc {

std::string_view chat_page_html() {
  // One string so the binary is the whole deployment. The API key, if the
  // server wants one, is asked for once and kept in the page's memory only.
  static constexpr std::string_view kPage = R"PAGE(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>supercluster chat</title>
<link rel="icon" href="data:,">
<style>
  body { font-family: system-ui, sans-serif; margin: 0; display: flex; flex-direction: column; height: 100vh; background: #f6f6f4; color: #1d1d1f; }
  header { padding: 0.6em 1em; background: #20232a; color: #eee; display: flex; gap: 0.6em 1.2em; align-items: center; flex-wrap: wrap; }
  header label { font-size: 0.9em; }
  header input { width: 5em; }
  #log { flex: 1; overflow-y: auto; padding: 1em; }
  .turn { max-width: 46em; margin: 0 auto 0.8em auto; padding: 0.5em 0.9em 0.6em; border-radius: 8px; white-space: pre-wrap; overflow-wrap: anywhere; }
  .turn::before { display: block; font-size: 0.75em; font-weight: 600; color: #5b6270; margin-bottom: 0.15em; white-space: normal; }
  .user { background: #dbe8ff; }
  .user::before { content: "You"; }
  .assistant { background: #fff; border: 1px solid #ddd; }
  .assistant::before { content: "Model"; }
  .assistant.pending:empty::after { content: "\2026"; color: #5b6270; }
  .assistant:empty:not(.pending)::after { content: "(empty reply)"; color: #5b6270; font-style: italic; }
  .error { background: #ffe1e1; color: #7a0f0f; }
  .error::before { content: "Error"; color: #7a0f0f; }
  form { display: flex; gap: 0.5em; padding: 0.8em 1em; background: #fff; border-top: 1px solid #ddd; align-items: flex-end; }
  #message { flex: 1; font: inherit; padding: 0.5em; resize: vertical; min-height: 1.5em; max-height: 40vh; }
  #send { font: inherit; padding: 0.5em 1.1em; }
  #speed { margin-left: auto; font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
<header>
  <strong>supercluster</strong>
  <span id="model"></span>
  <label>temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.8"></label>
  <label>max tokens <input id="max_tokens" type="number" min="1" max="4096" step="1" value="128"></label>
  <button id="clear" type="button">new chat</button>
  <span id="speed"></span>
</header>
<div id="log" aria-live="polite"></div>
<form id="form">
  <textarea id="message" rows="2" autocomplete="off" aria-label="message"
            placeholder="Type a message: Enter sends, Shift+Enter starts a new line"></textarea>
  <button id="send">Send</button>
</form>
<script>
"use strict";
const conversation = [];
let apiKey = "";
let current = null;  // the AbortController of the request in flight
const log = document.getElementById("log");
const speed = document.getElementById("speed");
const form = document.getElementById("form");
const input = document.getElementById("message");
const send = document.getElementById("send");

function addTurn(role, text) {
  const div = document.createElement("div");
  div.className = "turn " + role;
  div.textContent = text;
  log.appendChild(div);
  log.scrollTop = log.scrollHeight;
  return div;
}

function headers() {
  const h = { "Content-Type": "application/json" };
  if (apiKey) h["Authorization"] = "Bearer " + apiKey;
  return h;
}

fetch("/v1/models", { headers: headers() }).then(r => r.json()).then(j => {
  if (j.data) document.getElementById("model").textContent = j.data[0].id + " (step " + j.data[0].step + ")";
}).catch(() => {});

// A new chat drops the reply being generated (the server stops generating it
// when the connection closes).
document.getElementById("clear").onclick = () => {
  if (current) current.abort();
  current = null;
  conversation.length = 0;
  log.textContent = "";
  speed.textContent = "";
  send.disabled = false;
  input.focus();
};

input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    if (!send.disabled) form.requestSubmit();
  }
});

form.onsubmit = async (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text || current) return;
  input.value = "";
  conversation.push({ role: "user", content: text });
  const question = addTurn("user", text);
  const reply = addTurn("assistant", "");
  reply.classList.add("pending");
  const controller = new AbortController();
  current = controller;
  send.disabled = true;
  const started = performance.now();
  let tokens = 0;
  try {
    let response = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), signal: controller.signal,
      body: JSON.stringify({
        messages: conversation, stream: true,
        temperature: Number(document.getElementById("temperature").value),
        max_tokens: Number(document.getElementById("max_tokens").value) }) });
    if (response.status === 401) {
      apiKey = prompt("This server needs an API key:") || "";
      throw new Error("this server needs an API key: send the message again");
    }
    if (!response.ok) throw new Error((await response.json()).error.message);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
        const chunk = JSON.parse(event.slice(6));
        if (chunk.error) throw new Error(chunk.error.message);
        const delta = chunk.choices[0].delta;
        if (delta && delta.content) {
          tokens += 1;  // about one token a chunk; usage on the last chunk is exact
          // The template already ends the prompt with "Assistant:" and puts a
          // space after it when the reply is sent back: drop the reply's own.
          reply.textContent += reply.textContent ? delta.content : delta.content.trimStart();
          log.scrollTop = log.scrollHeight;
        }
        if (chunk.usage) tokens = chunk.usage.completion_tokens;
        // From sending the request: the wait for the first token counts too.
        const seconds = (performance.now() - started) / 1000;
        if (tokens && seconds > 0) speed.textContent = (tokens / seconds).toFixed(1) + " tokens/s";
      }
    }
    if (controller === current) conversation.push({ role: "assistant", content: reply.textContent });
  } catch (error) {
    if (controller !== current) return;  // dropped by "new chat"
    // Not sent: the question leaves the conversation and goes back into the
    // message box, to be sent again.
    conversation.pop();
    question.remove();
    if (!input.value) input.value = text;
    reply.className = "turn error";
    reply.textContent = String(error.message || error);
  } finally {
    reply.classList.remove("pending");
    if (controller === current) {
      current = null;
      send.disabled = false;
    }
  }
};
</script>
</body>
</html>
)PAGE";
  return kPage;
}

}  // namespace sc
