// The chat page: streams answers from /v1/chat/completions, shows them as Markdown with their citations, opens a
// cited span in its document beside the sources, uploads files, and switches collection and reader. Plain browser
// JavaScript, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { history: [] };  // earlier {role, content} turns of this chat, sent with each question

function headers(extra = {}) {
  const key = $("api-key").value.trim();
  localStorage.setItem("rag-api-key", key);
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function errorText(response) {
  try { return (await response.json()).error.message; } catch { return `HTTP ${response.status}`; }
}

async function loadChoices() {
  const [models, collections] = await Promise.all([
    fetch("/v1/models", { headers: headers() }), fetch("/collections", { headers: headers() })]);
  if (!models.ok || !collections.ok) {
    const failed = models.ok ? collections : models;
    return showError(`Could not load the readers and collections: ${await errorText(failed)}`);
  }
  fill($("model"), (await models.json()).data.map((m) => [m.id, m.id, m.description]));
  fill($("collection"), (await collections.json()).collections.map((c) => [c, c, ""]));
}

function fill(select, options) {
  const previous = select.value;
  select.replaceChildren(...options.map(([value, label, title]) => {
    const option = new Option(label, value);
    option.title = title;
    return option;
  }));
  if (options.some(([value]) => value === previous)) select.value = previous;
}

function addTurn(role, text) {
  const turn = document.createElement("div");
  turn.className = `turn ${role}`;
  const answer = document.createElement("div");
  answer.className = "answer";
  answer.textContent = text;
  turn.append(answer);
  $("conversation").append(turn);
  turn.scrollIntoView({ block: "end" });
  return turn;
}

function showError(message) {
  const turn = addTurn("assistant", message);
  turn.classList.add("error");
}

function showCitations(turn, citations, rag, collection) {
  if (rag && rag.abstained) turn.classList.add("abstained");
  if (rag && rag.answer_html) showRendered(turn.querySelector(".answer"), rag.answer_html, citations, collection);
  if (citations.length) {
    const list = document.createElement("ol");
    list.className = "citations";
    for (const citation of citations) {
      const item = document.createElement("li");
      const link = document.createElement("button");
      link.type = "button";
      const name = sourceLabel(citation);
      link.textContent = `[${citation.index}] ${name}: “${citation.text.slice(0, 90)}${citation.text.length > 90 ? "…" : ""}”`;
      link.addEventListener("click", () => openSource(citation, collection, citations));
      item.append(link);
      list.append(item);
    }
    turn.append(list);
  }
  if (rag) {
    const meta = document.createElement("div");
    meta.className = "meta";
    // `rag.notes` (model stand-ins, dropped sentences...) are for operators: the API returns them and the
    // server logs them; the person chatting sees what answered and how long it took.
    meta.textContent = `${rag.answer_type} · ${rag.mode} · ${Math.round(rag.timings_ms.total || 0)} ms`;
    turn.append(meta);
  }
}

// What rendered Markdown may hold. The server escapes raw HTML before rendering (rag.answer_html), so documents
// and models cannot inject markup; anything else found here is dropped all the same, with every attribute but
// these, and links only to the web.
const ALLOWED_TAGS = new Set(["P", "BR", "STRONG", "EM", "CODE", "PRE", "UL", "OL", "LI", "BLOCKQUOTE", "H1", "H2",
  "H3", "H4", "H5", "H6", "HR", "TABLE", "THEAD", "TBODY", "TR", "TH", "TD", "A", "S", "DEL"]);
const ALLOWED_ATTRIBUTES = new Set(["href", "class", "start", "style"]);

function sanitized(html) {
  const template = document.createElement("template");
  template.innerHTML = html;  // parsed inert: a template's content runs no script and loads nothing
  for (const element of [...template.content.querySelectorAll("*")]) {
    if (!ALLOWED_TAGS.has(element.tagName)) { element.replaceWith(element.textContent); continue; }
    for (const attribute of [...element.attributes]) {
      if (!ALLOWED_ATTRIBUTES.has(attribute.name)) element.removeAttribute(attribute.name);
    }
    if (element.hasAttribute("style") && !/^text-align:(left|right|center)$/.test(element.getAttribute("style"))) {
      element.removeAttribute("style");
    }
    if (element.tagName === "A") {
      if (!/^(https?:|mailto:|#)/i.test(element.getAttribute("href") || "")) element.removeAttribute("href");
      element.target = "_blank";
      element.rel = "noopener noreferrer";
    }
  }
  return template.content;
}

// The streamed text is replaced by its Markdown rendering: code blocks get a copy button and each [n] marker
// opens its source beside the chat.
function showRendered(answer, html, citations, collection) {
  answer.replaceChildren(sanitized(html));
  answer.classList.add("rendered");
  for (const block of answer.querySelectorAll("pre")) addCopyButton(block);
  linkMarkers(answer, citations, collection);
}

function addCopyButton(block) {
  const wrapper = document.createElement("div");
  wrapper.className = "code-block";
  block.replaceWith(wrapper);
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy secondary";
  button.textContent = "Copy";
  button.addEventListener("click", async () => {
    await copyText(block.textContent);
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
  wrapper.append(button, block);
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  const area = document.createElement("textarea");  // pages served over plain HTTP to another host
  area.value = text;
  document.body.append(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}

function linkMarkers(answer, citations, collection) {
  const byIndex = new Map(citations.map((citation) => [citation.index, citation]));
  const walker = document.createTreeWalker(answer, NodeFilter.SHOW_TEXT);
  const texts = [];
  while (walker.nextNode()) {
    if (!walker.currentNode.parentElement.closest("pre, code")) texts.push(walker.currentNode);
  }
  for (const node of texts) {
    const parts = node.textContent.split(/(\[\d+\])/);
    if (parts.length === 1) continue;
    node.replaceWith(...parts.map((part) => {
      const citation = byIndex.get(Number((/^\[(\d+)\]$/.exec(part) || [])[1]));
      if (!citation) return part;
      const marker = document.createElement("button");
      marker.type = "button";
      marker.className = "cite";
      marker.textContent = part;
      marker.title = sourceLabel(citation);
      marker.addEventListener("click", () => openSource(citation, collection, citations));
      return marker;
    }));
  }
}

// "R-intro.pdf, p. 12" (or "pp. 12–13") for a source with pages, else the file name.
function sourceLabel(citation) {
  const name = citation.source.split("/").pop();
  const pages = citation.pages || [];
  if (!pages.length) return name;
  const last = pages[pages.length - 1];
  return pages.length === 1 ? `${name}, p. ${pages[0]}` : `${name}, pp. ${pages[0]}–${last}`;
}

// The side panel: every source of the answer (with its pages), and the cited one's text with the span marked.
function listSources(citations, current, collection) {
  $("source-list").replaceChildren(...citations.map((citation) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `[${citation.index}] ${sourceLabel(citation)}`;
    button.classList.toggle("current", citation === current);
    button.addEventListener("click", () => openSource(citation, collection, citations));
    item.append(button);
    return item;
  }));
}

async function openSource(citation, collection, citations = [citation]) {
  const url = `/documents/${encodeURIComponent(citation.doc_id)}?collection=${encodeURIComponent(collection)}`;
  const response = await fetch(url, { headers: headers() });
  if (!response.ok) return showError(`Could not open ${citation.source}: ${await errorText(response)}`);
  const body = await response.json();
  const documentText = body.text;
  // A paginated source opens on the cited page(s) alone; others show the whole text.
  const cited = (body.pages || []).filter((page) => (citation.pages || []).includes(page.page));
  const from = cited.length ? Math.min(citation.start, ...cited.map((page) => page.start)) : 0;
  const to = cited.length ? Math.max(citation.end, ...cited.map((page) => page.end)) : documentText.length;
  const mark = document.createElement("mark");
  mark.textContent = documentText.slice(citation.start, citation.end);
  $("source-text").replaceChildren(documentText.slice(from, citation.start), mark, documentText.slice(citation.end, to));
  $("source-title").textContent = `${sourceLabel(citation)} (characters ${citation.start}–${citation.end})`;
  listSources(citations, citation, collection);
  $("source-panel").hidden = false;
  mark.scrollIntoView({ block: "center" });
}

// Reads `data: {...}` server-sent events from a streamed fetch response.
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of block.split("\n")) {
        if (line.startsWith("data: ")) yield line.slice(6);
      }
    }
  }
}

// A reply from another task: show the image, or follow the video job and play it when done.
async function showTask(turn, task) {
  const answer = turn.querySelector(".answer");
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = `${task.name} · ${task.reason}`;
  turn.append(meta);
  if (task.images && task.images.length) {
    answer.replaceChildren(...task.images.map((b64) => {
      const image = document.createElement("img");
      image.className = "generated";
      image.src = `data:image/png;base64,${b64}`;
      image.alt = "generated image";
      return image;
    }));
  }
  if (task.job) {
    const progress = document.createElement("progress");
    answer.append(document.createElement("br"), progress);
    const response = await fetch(`/v1/jobs/${task.job}/events`, { headers: headers() });
    let job = null;
    for await (const data of events(response)) {
      job = JSON.parse(data);
      if (job.total_steps) { progress.max = job.total_steps; progress.value = job.step; }
    }
    progress.remove();
    if (job && job.status === "succeeded") {
      const clip = await fetch(job.content_url, { headers: headers() });
      const video = document.createElement("video");
      video.className = "generated";
      video.controls = true;
      video.src = URL.createObjectURL(await clip.blob());
      answer.append(video);
    } else if (job) {
      answer.append(` (failed: ${job.error})`);
    }
  }
}

async function ask(question) {
  const collection = $("collection").value || "default";
  const messages = [...state.history, { role: "user", content: question }];
  addTurn("user", question);
  const turn = addTurn("assistant", "");
  const answer = turn.querySelector(".answer");
  const response = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify({ model: $("model").value || "extractive", messages, stream: true, collection }),
  });
  if (!response.ok) {
    turn.remove();
    return showError(await errorText(response));
  }
  let text = "";
  for await (const data of events(response)) {
    if (data === "[DONE]") break;
    const chunk = JSON.parse(data);
    if (chunk.error) return showError(chunk.error.message);
    const delta = chunk.choices[0].delta.content || "";
    text += delta;
    answer.textContent = text;
    if (chunk.choices[0].finish_reason && chunk.task && chunk.task.name !== "qa") {
      await showTask(turn, chunk.task);
      text = `[${chunk.task.name}]`;  // the history keeps a marker, not a data URL
    } else if (chunk.choices[0].finish_reason) {
      showCitations(turn, chunk.citations || [], chunk.rag, collection);
    }
  }
  turn.dataset.done = "true";
  state.history.push({ role: "user", content: question }, { role: "assistant", content: text });
}

$("ask-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  $("question").value = "";
  $("ask").disabled = true;
  try { await ask(question); } catch (error) { showError(String(error)); } finally { $("ask").disabled = false; }
});

$("question").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("ask-form").requestSubmit(); }
});

$("new-chat").addEventListener("click", () => { state.history = []; $("conversation").replaceChildren(); });
$("close-source").addEventListener("click", () => { $("source-panel").hidden = true; });
$("collection").addEventListener("change", () => { state.history = []; });
$("api-key").addEventListener("change", loadChoices);

$("upload-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) return;
  const body = new FormData();
  body.append("file", file);
  body.append("collection", $("collection").value || "default");
  $("upload").disabled = true;
  $("upload-status").textContent = `Ingesting ${file.name}…`;
  try {
    const response = await fetch("/documents", { method: "POST", headers: headers(), body });
    if (!response.ok) {
      $("upload-status").textContent = `Upload failed: ${await errorText(response)}`;
      return;
    }
    const result = await response.json();
    $("upload-status").textContent =
      `${file.name}: ${result.chunks_added} chunks added to “${result.collection}” in ${result.seconds.toFixed(1)} s`;
    $("file").value = "";
    await loadChoices();
  } finally {
    $("upload").disabled = false;
  }
});

$("api-key").value = localStorage.getItem("rag-api-key") || "";
loadChoices();
