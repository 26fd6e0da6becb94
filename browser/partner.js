// The partner page's script: embeds one launch link of ours through Transak's browser SDK
// (@transak/transak-sdk 4.x, bundled offline with esbuild) and records what the SDK relays.
//
// The launch link comes from `?link=<url>` or from the fragment (`#<url>`). Everything the
// page sees is kept in `window.__events` (what the SDK emitted through `Transak.on`),
// `window.__messages` (every raw `message` event, to tell what the SDK dropped) and
// `window.__errors`, and shown in `#events` for a person looking at the page.
import { Transak } from "@transak/transak-sdk";

const events = [];
const messages = [];
const errors = [];
window.__events = events;
window.__messages = messages;
window.__errors = errors;

const list = document.getElementById("events");
function show(text) {
  if (!list) return;
  const item = document.createElement("li");
  item.textContent = text;
  list.appendChild(item);
}

function record(event, data) {
  events.push({ event, data: data ?? null, at: Date.now() });
  show(`${event} ${JSON.stringify(data ?? null)}`);
}

const link =
  new URLSearchParams(window.location.search).get("link") ||
  decodeURIComponent(window.location.hash.replace(/^#/, ""));

// Every message reaching the page, whatever the SDK makes of it.
window.addEventListener("message", (e) => {
  messages.push({ origin: e.origin, data: e.data ?? null });
});

try {
  if (!link) throw new Error("no launch link: open this page with ?link=<launch link>");
  // The SDK only lets one subscribe to the names of its EVENTS enum (4.x has no "*").
  for (const name of Object.values(Transak.EVENTS)) {
    Transak.on(name, (data) => record(name, data));
  }
  const transak = new Transak({
    widgetUrl: link,
    // Required by 4.x (a valid URL), not sent anywhere.
    referrer: window.location.origin,
    // Embedded in the page rather than the SDK's modal.
    containerId: "widget",
  });
  transak.init();
  window.__transak = transak;
  show(`embedded ${link}`);
} catch (e) {
  errors.push(String(e?.message ?? e));
  show(`error: ${e?.message ?? e}`);
}
