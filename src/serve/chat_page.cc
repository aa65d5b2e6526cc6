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
<style>
  body { font-family: system-ui, sans-serif; margin: 0; display: flex; flex-direction: column; height: 100vh; background: #f6f6f4; }
  header { padding: 0.6em 1em; background: #20232a; color: #eee; display: flex; gap: 1.2em; align-items: center; flex-wrap: wrap; }
  header label { font-size: 0.9em; }
  header input { width: 5em; }
  #log { flex: 1; overflow-y: auto; padding: 1em; }
  .turn { max-width: 46em; margin: 0 auto 0.8em auto; padding: 0.6em 0.9em; border-radius: 8px; white-space: pre-wrap; }
  .user { background: #dbe8ff; }
  .assistant { background: #fff; border: 1px solid #ddd; }
  .error { background: #ffe1e1; }
  form { display: flex; gap: 0.5em; padding: 0.8em 1em; background: #fff; border-top: 1px solid #ddd; }
  #message { flex: 1; font: inherit; padding: 0.5em; }
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
<div id="log"></div>
<form id="form">
  <input id="message" autocomplete="off" placeholder="Type a message and press Enter">
  <button id="send">Send</button>
</form>
<script>
"use strict";
const conversation = [];
let apiKey = "";
const log = document.getElementById("log");
const speed = document.getElementById("speed");

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

document.getElementById("clear").onclick = () => { conversation.length = 0; log.textContent = ""; speed.textContent = ""; };

document.getElementById("form").onsubmit = async (event) => {
  event.preventDefault();
  const input = document.getElementById("message");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  conversation.push({ role: "user", content: text });
  addTurn("user", text);
  const reply = addTurn("assistant", "");
  const send = document.getElementById("send");
  send.disabled = true;
  const started = performance.now();
  let tokens = 0;
  try {
    let response = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify({
      messages: conversation, stream: true,
      temperature: Number(document.getElementById("temperature").value),
      max_tokens: Number(document.getElementById("max_tokens").value) }) });
    if (response.status === 401) {
      apiKey = prompt("This server needs an API key:") || "";
      throw new Error("send the message again with the key");
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
          reply.textContent += delta.content;
          log.scrollTop = log.scrollHeight;
        }
        if (chunk.usage) tokens = chunk.usage.completion_tokens;
        // From sending the request: the wait for the first token counts too.
        const seconds = (performance.now() - started) / 1000;
        if (tokens && seconds > 0) speed.textContent = (tokens / seconds).toFixed(1) + " tokens/s";
      }
    }
    conversation.push({ role: "assistant", content: reply.textContent });
  } catch (error) {
    reply.className = "turn error";
    reply.textContent = String(error.message || error);
    conversation.pop();
  } finally {
    send.disabled = false;
  }
};
</script>
</body>
</html>
)PAGE";
  return kPage;
}

}  // namespace sc
