// Drives the checkout consent page in headless Chromium for
// tests/tests/browser.rs, which creates the sessions, then checks what this
// script saw. Input: a JSON file (argv[2]) naming the pages to visit; output:
// one JSON object on stdout with what each page showed and where each click
// landed. Screenshots go to `screenshotDir`.
//
// playwright-core is resolved from PLAYWRIGHT_MODULES (scripts/test installs
// it into .tools/npm/node_modules); Chromium from CHROMIUM (/usr/bin/chromium).
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const modules = process.env.PLAYWRIGHT_MODULES;
const { chromium } = require(modules ? path.join(modules, 'playwright-core') : 'playwright-core');

// What the page showed when a step failed, for the error report.
let lastPage = '';

async function main() {
  const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const results = {};
  try {
    // A phone-sized viewport: the page must read well there.
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
    const page = await context.newPage();
    const violations = [];
    page.on('load', async () => {
      lastPage = `${page.url()}\n${await page.textContent('body').catch(() => '')}`;
    });
    page.on('console', (message) => {
      // Error pages answer 4xx by design; anything else (a style the
      // page's own CSP blocks, a script error) is a defect.
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
        violations.push(message.text());
      }
    });

    // The purchase: read the page, then accept.
    await page.goto(plan.purchaseUrl);
    results.purchase = {
      lang: await page.getAttribute('html', 'lang'),
      offering: await page.textContent('#offering-name'),
      price: await page.textContent('#price'),
      amountDue: await page.textContent('#amount-due-today'),
      paymentMethod: await page.textContent('#payment-method'),
      acceptDisabled: await page.isDisabled('#accept'),
    };
    await page.screenshot({ path: path.join(plan.screenshotDir, 'checkout-purchase.png'), fullPage: true });
    // Keyboard only: Accept is reachable and pressable without a mouse.
    await page.focus('#accept');
    await Promise.all([page.waitForURL((url) => url.href.startsWith(plan.returnUrl)), page.keyboard.press('Enter')]);
    results.purchase.landedUrl = page.url();

    // The same token again: an error page, no redirect.
    const used = await page.goto(plan.purchaseUrl);
    results.used = { status: used.status(), url: page.url(), code: await page.textContent('#error-code') };
    await page.screenshot({ path: path.join(plan.screenshotDir, 'checkout-used.png'), fullPage: true });

    // A token whose 24 h ran out.
    const expired = await page.goto(plan.expiredUrl);
    results.expired = { status: expired.status(), url: page.url(), code: await page.textContent('#error-code') };

    // Decline.
    await page.goto(plan.declineUrl);
    await Promise.all([page.waitForURL((url) => url.href.startsWith(plan.returnUrl)), page.click('#decline')]);
    results.decline = { landedUrl: page.url() };

    // An upgrade: the prorated amount due today.
    await page.goto(plan.upgradeUrl);
    results.upgrade = {
      offering: await page.textContent('#offering-name'),
      amountDue: await page.textContent('#amount-due-today'),
    };
    await page.screenshot({ path: path.join(plan.screenshotDir, 'checkout-upgrade.png'), fullPage: true });

    // No card on file: a clear state, Accept disabled.
    await page.goto(plan.noCardUrl);
    results.noCard = {
      alert: await page.textContent('#no-payment-method'),
      acceptDisabled: await page.isDisabled('#accept'),
    };
    await page.screenshot({ path: path.join(plan.screenshotDir, 'checkout-no-card.png'), fullPage: true });

    // CSP or other errors the browser reported (e.g. a blocked style).
    results.consoleErrors = violations;
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n${lastPage}\n`);
  process.exit(1);
});
