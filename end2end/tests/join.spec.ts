import { test, expect } from "@playwright/test";
import { CLERK, balance, db, hydrated, screenshot, signIn } from "./support";

test.afterEach(async ({ page }, testInfo) => {
  await screenshot(page, testInfo);
});

test("a customer joins on the sign-up page, the counter records a sale on the new pass, and the pass page shows it", async ({
  page,
  browser,
}) => {
  // The customer, on their own phone: no staff session.
  await page.goto("/join/demo-coffee-club");
  await hydrated(page);
  await expect(page.getByRole("heading", { name: "Demo Coffee Club" })).toBeVisible();
  await page.getByRole("button", { name: "Get my pass" }).click();
  await expect(page).toHaveURL(/\/pass\/[^/]+$/);
  const passUrl = page.url();
  await expect(page.locator(".balance-value")).toHaveText("0");
  await expect(page.getByRole("img", { name: "Your member code" }).locator("svg")).toBeVisible();
  const member = (await page.locator(".pass-id").textContent())!.trim();
  expect(member).toMatch(/^PUB-/);
  await expect(page.getByText("No points yet: show this code at the counter.")).toBeVisible();

  // The clerk types the code the pass shows and records the customer's sale on it.
  const counter = await browser.newContext();
  const till = await counter.newPage();
  await signIn(till, CLERK);
  await till.getByLabel("Code").fill(member);
  await till.getByLabel("Code").press("Enter");
  await expect(till).toHaveURL(new RegExp(`/member/${member}$`));
  await till.getByLabel("Sale amount (EUR)").fill("15");
  await till.getByRole("button", { name: "Record the sale" }).click();
  await expect(till.getByRole("status")).toContainText("New balance: 15 points.");
  await counter.close();

  // The customer's pass page, opened again, shows the balance and the sale's points.
  await page.goto(passUrl);
  await expect(page.locator(".balance-value")).toHaveText("15");
  await expect(page.locator(".pass-activity li.earn .num")).toHaveText("+15");
  const client = await db();
  expect(await balance(client, member)).toBe(15);
  await client.end();
});

test("a sign-up page that does not exist says so", async ({ page }) => {
  await page.goto("/join/no-such-program");
  await expect(page.getByRole("heading", { name: "Sign-up page not found" })).toBeVisible();
  await page.goto("/pass/not-a-pass-token");
  await expect(page.getByRole("heading", { name: "Pass not found" })).toBeVisible();
});
