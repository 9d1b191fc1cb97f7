import { expect, Page, test } from "@playwright/test";
import { MANAGER, balance, db, hydrated, newMember, screenshot, signIn } from "./support";

test.afterEach(async ({ page }, testInfo) => {
  await screenshot(page, testInfo);
});

/** Every Content-Security-Policy violation the page reports, in its console or as the DOM's own event. */
function violations(page: Page): string[] {
  const seen: string[] = [];
  page.on("console", (message) => {
    if (/content.security.policy/i.test(message.text())) seen.push(message.text());
  });
  page.on("pageerror", (error) => seen.push(`page error: ${error.message}`));
  return seen;
}

test("under the security policy every page hydrates and works, and nothing is refused", async ({ page }) => {
  await page.addInitScript(() =>
    document.addEventListener("securitypolicyviolation", (event) =>
      console.error(`Content Security Policy violation: ${event.violatedDirective} ${event.blockedURI}`),
    ),
  );
  const refused = violations(page);
  const client = await db();
  const member = await newMember(client, 10);

  const login = await page.goto("/login");
  const policy = login!.headers()["content-security-policy"];
  expect(policy).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9_-]+' 'wasm-unsafe-eval'/);
  expect(policy).toContain("frame-ancestors 'none'");
  await signIn(page, MANAGER);

  // The point of sale, run by the page's own code: scan, record a sale.
  await page.getByLabel("Code").fill(member);
  await page.getByLabel("Code").press("Enter");
  await expect(page).toHaveURL(new RegExp(`/member/${member}$`));
  await hydrated(page);
  await page.getByLabel("Sale amount (EUR)").fill("5");
  await page.getByRole("button", { name: "Record the sale" }).click();
  await expect(page.getByRole("status")).toContainText("New balance: 15 points");
  expect(await balance(client, member)).toBe(15);

  // Each manager's page, reached through the navigation and loaded afresh.
  for (const [link, heading] of [
    ["History", "Transaction history"],
    ["Staff", "Staff"],
    ["Batches", "Postcard batches"],
    ["Wallet", "Wallet deliveries"],
    ["Rewards", "Rewards"],
    ["Program", "Program"],
    ["Numbers", "Numbers"],
    ["Backups", "Backups"],
  ]) {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: link, exact: true }).click();
    await expect(page.getByRole("heading", { name: heading, exact: true })).toBeVisible();
    await page.reload();
    await hydrated(page);
    await expect(page.getByRole("heading", { name: heading, exact: true })).toBeVisible();
  }
  await expect(page.locator("[data-backups]")).toContainText("keeps no backups");

  // The member's public pass page and the public sign-up page, with no staff session.
  const { rows } = await client.query("select pass_token from passes_master where external_id = $1", [member]);
  const outsider = await page.context().browser()!.newPage();
  const outsiderRefused = violations(outsider);
  await outsider.goto(`/pass/${rows[0].pass_token}`);
  await hydrated(outsider);
  await expect(outsider.locator(".balance-value")).toHaveText("15");
  await outsider.goto("/join/demo-coffee-club");
  await hydrated(outsider);
  await expect(outsider.getByRole("button", { name: "Get my pass" })).toBeVisible();
  await outsider.close();

  expect(refused).toEqual([]);
  expect(outsiderRefused).toEqual([]);
  await client.end();
});

test("no other page can frame the dashboard", async ({ page, baseURL }) => {
  const refusal = page.waitForEvent("console", (message) => /frame-ancestors/.test(message.text()));
  await page.setContent(`<iframe title="framed" src="${baseURL}/login"></iframe>`);
  expect((await refusal).text()).toContain("'none'");
  await expect(page.frameLocator("iframe").getByRole("button", { name: "Sign in" })).toHaveCount(0);
});
