// Drives the hosted travel-rule step of launch links in headless Chromium (playwright-core,
// with the system's Chromium: nothing is downloaded).
//
//   node hosted.mjs keys                         -> {"evm": {...}, "sol": {...}} (fresh keys)
//   node hosted.mjs run <chromium> < plan.json    -> one JSON line with what it saw
//
// The plan (from crates/server/tests/browser.rs) names the links and keys of each scenario:
//   evm:    a partner page embedding the link through Transak's SDK; inside the SDK's iframe
//           an EVM customer (an injected EIP-1193 provider backed by an ethers wallet)
//           declares a wallet of their own, signs, continues and completes the order;
//   sol:    a Solana customer (an injected window.solana provider signing with tweetnacl)
//           declares, signs and continues to the widget;
//   nojs:   JavaScript disabled: declares, pastes a BIP-322 signature made elsewhere,
//           continues to the widget;
//   framed: the link of a record awaiting its proof inside the SDK's iframe, no wallet: the
//           page offers to open itself in a new tab;
//   peek:   a plain GET of a fresh link (the test then checks that nothing was consumed).
// axe-core runs on every state of the page (in the contexts with JavaScript: it is a script);
// violations of serious or critical impact are reported. Screenshots of the states go to $SCREENSHOTS when it is set.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";
import { Wallet, getBytes, encodeBase58 } from "ethers";
import nacl from "tweetnacl";

const require = createRequire(import.meta.url);
const STEP_TIMEOUT_MS = Number(process.env.DRIVE_STEP_TIMEOUT_MS || 20000);

if (process.argv[2] === "keys") {
  const evm = Wallet.createRandom();
  const sol = nacl.sign.keyPair();
  console.log(
    JSON.stringify({
      evm: { secret: evm.privateKey, address: evm.address },
      sol: {
        secret: Buffer.from(sol.secretKey).toString("hex"),
        address: encodeBase58(sol.publicKey),
      },
    }),
  );
  process.exit(0);
}

const executablePath = process.argv[3];
const plan = JSON.parse(readFileSync(0, "utf8"));
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const screenshots = process.env.SCREENSHOTS || null;

const TOTAL_TIMEOUT_MS = Number(process.env.DRIVE_TOTAL_TIMEOUT_MS || 90000);
let current = "starting";
const watchdog = setTimeout(() => {
  console.error(`hosted.mjs: timed out after ${TOTAL_TIMEOUT_MS} ms while ${current}`);
  for (const line of consoleLines) console.error(`hosted.mjs: console: ${line}`);
  process.exit(2);
}, TOTAL_TIMEOUT_MS);
watchdog.unref();
const consoleLines = [];
const axeReport = [];
async function step(name, fn) {
  current = name;
  if (process.env.DRIVE_TRACE) console.error(`hosted.mjs: ${name}`);
  return fn();
}

/** Runs axe-core in `frame` (evaluated through the DevTools protocol: the page's CSP stays). */
async function axe(frame, state) {
  await frame.evaluate(axeSource);
  const result = await frame.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => n.target.join(" ")),
    }));
  });
  axeReport.push({
    state,
    serious: result.filter((v) => v.impact === "serious" || v.impact === "critical"),
    other: result.filter((v) => v.impact !== "serious" && v.impact !== "critical").map((v) => v.id),
  });
}

async function shot(page, name) {
  if (screenshots) await page.screenshot({ path: `${screenshots}/${name}.png`, fullPage: true });
}

/** Declares the customer's own self-hosted wallet: the form, the confirmation. */
async function declareOwnWallet(frame, label, page) {
  await step(`${label}: the declaration form`, () => frame.locator("#custody").waitFor());
  await axe(frame, `${label}: the declaration form`);
  if (page) await shot(page, "hosted-1-questions");
  // Nothing chosen: the errors, next to their fields.
  await step(`${label}: reviewing an empty answer`, () => frame.locator("#review").click());
  await frame.locator("#custody-error").waitFor();
  await axe(frame, `${label}: the form with errors`);
  if (page) await shot(page, "hosted-2-errors");
  await frame.locator("#custody").check();
  await frame.locator("#owner").check();
  await step(`${label}: reviewing the answer`, () => frame.locator("#review").click());
  await frame.locator("#confirm").waitFor();
  await axe(frame, `${label}: the confirmation`);
  if (page) await shot(page, "hosted-3-confirm");
  await step(`${label}: confirming`, () => frame.locator("#confirm").click());
  await frame.locator("#challenge").waitFor();
  await axe(frame, `${label}: the challenge`);
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-quic"],
  timeout: STEP_TIMEOUT_MS,
});
const seen = {};
let code = 0;
try {
  // (a) + (e): the EVM customer inside the SDK's iframe on the partner page.
  {
    const context = await browser.newContext();
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    const wallet = new Wallet(plan.evm.secret);
    await context.exposeFunction("__walletPersonalSign", (hex) => wallet.signMessage(getBytes(hex)));
    // An EIP-1193 provider in every frame, backed by the ethers wallet above.
    await context.addInitScript((address) => {
      window.ethereum = {
        isTestWallet: true,
        async request({ method, params }) {
          if (method === "eth_requestAccounts" || method === "eth_accounts") return [address];
          if (method === "personal_sign") {
            if (params[1].toLowerCase() !== address.toLowerCase()) throw new Error("unknown account");
            return window.__walletPersonalSign(params[0]);
          }
          throw new Error(`unsupported ${method}`);
        },
      };
    }, wallet.address);
    const page = await context.newPage();
    page.on("console", (m) => consoleLines.push(`[evm ${m.type()}] ${m.text()}`));
    await step("evm: opening the partner page", () => page.goto(plan.evm.partnerPage));
    const iframe = await step("evm: waiting for the SDK's iframe", () =>
      page.waitForSelector("#transakIframe", { state: "attached" }),
    );
    const iframeSrc = await iframe.getAttribute("src");
    const frame = page.frameLocator("#transakIframe");
    const handle = await iframe.contentFrame();
    await declareOwnWallet(handle, "evm");
    await step("evm: the wallet button", () => frame.locator("#sign").waitFor({ state: "visible" }));
    await step("evm: signing with the wallet", () => frame.locator("#sign").click());
    await step("evm: the Continue button", () => frame.locator("#continue").waitFor());
    await axe(await iframe.contentFrame(), "evm: complete");
    await step("evm: continuing", () => frame.locator("#continue").click());
    await step("evm: the widget inside the iframe", () =>
      frame.locator("#complete").waitFor({ state: "visible" }),
    );
    const widgetUrl = (await iframe.contentFrame()).url();
    await step("evm: completing the order", () => frame.locator("#complete").click());
    await step("evm: TRANSAK_ORDER_SUCCESSFUL on the partner page", () =>
      page.waitForFunction(() =>
        (window.__events || []).some((e) => e.event === "TRANSAK_ORDER_SUCCESSFUL"),
      ),
    );
    const events = await page.evaluate(() => window.__events);
    seen.evm = { iframeSrc, widgetUrl, events: events.map((e) => e.event) };
    await context.close();
  }

  // (b) the Solana customer, top level, with an injected window.solana provider.
  {
    const context = await browser.newContext();
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    const secret = Buffer.from(plan.sol.secret, "hex");
    await context.exposeFunction("__solanaSign", (bytes) =>
      Array.from(nacl.sign.detached(Uint8Array.from(bytes), secret)),
    );
    await context.addInitScript((address) => {
      window.solana = {
        isTestWallet: true,
        publicKey: { toString: () => address },
        async connect() {
          return { publicKey: this.publicKey };
        },
        async signMessage(message) {
          const signature = await window.__solanaSign(Array.from(message));
          return { signature: Uint8Array.from(signature), publicKey: this.publicKey };
        },
      };
    }, plan.sol.address);
    const page = await context.newPage();
    page.on("console", (m) => consoleLines.push(`[sol ${m.type()}] ${m.text()}`));
    await step("sol: opening the link", () => page.goto(plan.sol.link));
    await declareOwnWallet(page.mainFrame(), "sol", page);
    await shot(page, "hosted-4-sign");
    await page.locator("#signature").fill("not a signature");
    await step("sol: a refused signature", () => page.locator("#verify").click());
    await page.locator("#signature-error").waitFor();
    await axe(page.mainFrame(), "sol: a refused signature");
    await step("sol: signing with the wallet", () => page.locator("#sign").click());
    await step("sol: the Continue button", () => page.locator("#continue").waitFor());
    await axe(page.mainFrame(), "sol: complete");
    await shot(page, "hosted-5-continue");
    await Promise.all([
      page.waitForURL((url) => url.href.startsWith(plan.widgetBase)),
      step("sol: continuing", () => page.locator("#continue").click()),
    ]);
    seen.sol = { widgetUrl: page.url() };
    await context.close();
  }

  // (c) without JavaScript, a pasted BIP-322 signature.
  {
    const context = await browser.newContext({ javaScriptEnabled: false });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    const page = await context.newPage();
    await step("nojs: opening the link", () => page.goto(plan.nojs.link));
    await page.locator("#custody").check();
    await page.locator("#owner").check();
    await step("nojs: reviewing", () => page.locator("#review").click());
    await step("nojs: confirming", () => page.locator("#confirm").click());
    const message = await page.locator("#challenge").innerText();
    const walletHidden = await page.locator("#wallet").isHidden();
    await page.locator("#signature").fill("not a signature");
    await step("nojs: a refused signature", () => page.locator("#verify").click());
    const error = await page.locator("#signature-error").innerText();
    await page.locator("#signature").fill(plan.nojs.signature);
    await step("nojs: the signature", () => page.locator("#verify").click());
    await step("nojs: continuing", async () => {
      await page.locator("#continue").click();
      await page.waitForURL((url) => url.href.startsWith(plan.widgetBase));
    });
    seen.nojs = { message, walletHidden, error, widgetUrl: page.url() };
    await context.close();
  }

  // Framed without a wallet (as on a phone: wallets do not inject into frames), the page
  // offers to open itself in a new tab.
  {
    const context = await browser.newContext();
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    const page = await context.newPage();
    await step("framed: opening the partner page", () => page.goto(plan.framed.partnerPage));
    const iframe = await step("framed: waiting for the SDK's iframe", () =>
      page.waitForSelector("#transakIframe", { state: "attached" }),
    );
    const frame = page.frameLocator("#transakIframe");
    await step("framed: the offer of a new tab", () =>
      frame.locator("#no-wallet").waitFor({ state: "visible" }),
    );
    await axe(await iframe.contentFrame(), "framed: no wallet");
    seen.framed = {
      href: await frame.locator("#new-tab").evaluate((a) => a.href), // resolved against the page
      target: await frame.locator("#new-tab").getAttribute("target"),
      signHidden: await frame.locator("#sign").isHidden(),
    };
    await context.close();
  }

  // (d) a plain GET (a link preview, a scanner) consumes nothing.
  {
    const context = await browser.newContext();
    const page = await context.newPage();
    const response = await step("peek: opening the link", () => page.goto(plan.peek.link));
    seen.peek = { status: response.status(), heading: await page.locator("h1").innerText() };
    await context.close();
  }
  seen.axe = axeReport;
  seen.console = consoleLines;
  console.log(JSON.stringify(seen));
} catch (e) {
  code = 1;
  console.error(`hosted.mjs: failed while ${current}: ${e?.message ?? e}`);
  for (const line of consoleLines) console.error(`hosted.mjs: console: ${line}`);
  console.error(`hosted.mjs: axe so far: ${JSON.stringify(axeReport)}`);
} finally {
  await browser.close().catch(() => {});
}
process.exit(code);
