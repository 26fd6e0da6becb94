// Drives the partner page in headless Chromium (playwright-core, with the system's Chromium:
// nothing is downloaded).
//
//   node drive.mjs <partner page URL> <chromium executable>
//
// Opens the page, waits for the SDK's iframe to land on the (emulated) Transak widget page,
// clicks "Complete order" (#complete) inside the iframe, waits until the page received
// TRANSAK_ORDER_SUCCESSFUL through the SDK, then opens the launch link again in a new page.
// Prints one JSON line with what it saw; exits 1 with a message naming the step on a failure
// or timeout (2 when the whole run overruns).
import { chromium } from "playwright-core";

const [pageUrl, executablePath] = process.argv.slice(2);
if (!pageUrl || !executablePath) {
  console.error("usage: node drive.mjs <partner page URL> <chromium executable>");
  process.exit(64);
}

const STEP_TIMEOUT_MS = Number(process.env.DRIVE_STEP_TIMEOUT_MS || 20000);
const TOTAL_TIMEOUT_MS = Number(process.env.DRIVE_TOTAL_TIMEOUT_MS || 90000);

const watchdog = setTimeout(() => {
  console.error(`drive.mjs: timed out: the whole run took over ${TOTAL_TIMEOUT_MS} ms`);
  process.exit(2);
}, TOTAL_TIMEOUT_MS);
watchdog.unref();

const console_lines = [];
let current = "starting";
let page;

async function step(name, fn) {
  current = name;
  return fn();
}

async function pageState() {
  try {
    return await page.evaluate(() => ({
      events: window.__events ?? null,
      messages: window.__messages ?? null,
      errors: window.__errors ?? null,
    }));
  } catch {
    return null;
  }
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-quic",
  ],
  timeout: STEP_TIMEOUT_MS,
});
let code = 0;
try {
  const context = await browser.newContext();
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  page = await context.newPage();
  page.on("console", (m) => console_lines.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => console_lines.push(`[pageerror] ${e.message}`));

  await step("opening the partner page", () => page.goto(pageUrl));
  const link = await page.evaluate(
    () =>
      new URLSearchParams(window.location.search).get("link") ||
      decodeURIComponent(window.location.hash.replace(/^#/, "")),
  );

  const iframe = await step("waiting for the SDK's iframe (#transakIframe)", () =>
    page.waitForSelector("#transakIframe", { state: "attached" }),
  );
  const iframeSrc = await iframe.getAttribute("src");
  const widget = page.frameLocator("#transakIframe");

  await step("waiting for the widget page inside the iframe", () =>
    widget.locator("#complete").waitFor({ state: "visible" }),
  );
  const frame = await iframe.contentFrame();
  const widgetUrl = frame ? frame.url() : null;
  const widgetHeading = await widget.locator("h1").innerText();
  const widgetSessionId = await widget.locator("#sessionId").innerText();

  await step("clicking #complete inside the iframe", () => widget.locator("#complete").click());
  await step("waiting for the widget page to show the order", () =>
    widget.locator("#result", { hasText: "Order " }).waitFor(),
  );
  const widgetResult = await widget.locator("#result").innerText();

  await step("waiting for TRANSAK_ORDER_SUCCESSFUL on the partner page", () =>
    page.waitForFunction(() =>
      (window.__events || []).some((e) => e.event === "TRANSAK_ORDER_SUCCESSFUL"),
    ),
  );
  const seen = await pageState();
  const partnerText = await page.locator("#events").innerText();

  const again = await context.newPage();
  const reopened = await step("opening the launch link again", () => again.goto(link));
  const reopen = {
    status: reopened ? reopened.status() : null,
    url: again.url(),
    title: await again.title(),
    heading: await again.locator("h1").innerText(),
    text: await again.locator("body").innerText(),
  };

  console.log(
    JSON.stringify({
      link,
      iframeSrc,
      widgetUrl,
      widgetHeading,
      widgetSessionId,
      widgetResult,
      events: seen.events,
      messages: seen.messages,
      errors: seen.errors,
      partnerText,
      reopen,
      console: console_lines,
    }),
  );
} catch (e) {
  code = 1;
  const timedOut = e?.name === "TimeoutError";
  console.error(
    `drive.mjs: ${timedOut ? "timed out" : "failed"} while ${current}: ${e?.message ?? e}`,
  );
  if (page) {
    console.error(`drive.mjs: the partner page saw: ${JSON.stringify(await pageState())}`);
    console.error(`drive.mjs: frames: ${JSON.stringify(page.frames().map((f) => f.url()))}`);
  }
  for (const line of console_lines) console.error(`drive.mjs: console: ${line}`);
} finally {
  await browser.close().catch(() => {});
}
process.exit(code);
