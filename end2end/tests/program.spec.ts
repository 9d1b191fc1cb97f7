import { expect, test } from "@playwright/test";
import { CLERK, MANAGER, balance, db, hydrated, newMember, screenshot, signIn } from "./support";

test.afterEach(async ({ page }, testInfo) => {
  await screenshot(page, testInfo);
});

test("a sale earns by the program's rate and its promotion, and the receipt says how", async ({ page }) => {
  const client = await db();
  const member = await newMember(client, 0);
  await signIn(page, MANAGER);

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Program", exact: true }).click();
  await expect(page.locator(".rate")).toHaveText("Customers earn 1 point per 1.00 EUR.");
  await hydrated(page);
  const promotion = `Double ${Date.now()}`;
  await page.getByLabel("Name").fill(promotion);
  await page.getByLabel("Points multiplied by (%: 200 doubles)").fill("200");
  await page.getByRole("button", { name: "Add the promotion" }).click();
  await expect(page.getByRole("status")).toContainText("The promotion is added.");
  await expect(page.locator(`[data-promotion="${promotion}"]`)).toContainText("x2 · every day");

  await page.goto(`/member/${member}`);
  await hydrated(page);
  await page.getByLabel("Sale amount (EUR)").fill("12.50");
  await page.getByRole("button", { name: "Record the sale" }).click();
  await expect(page.getByRole("status")).toContainText(
    `Earned 25 points (12.50 EUR -> 25 points, 1 point per 1.00 EUR, x2 ${promotion}). New balance: 25 points.`,
  );
  await expect(page.locator(".balance-value")).toHaveText("25");
  expect(await balance(client, member)).toBe(25);

  // A typo in the amount is the database's to refuse, in words.
  await page.getByLabel("Sale amount (EUR)").fill("12.505");
  await page.getByRole("button", { name: "Record the sale" }).click();
  await expect(page.getByRole("status")).toContainText("Enter the sale's amount in EUR, like 12.50.");
  expect(await balance(client, member)).toBe(25);

  // The promotion ends: the next sale earns by the plain rate.
  await page.goto("/program");
  await hydrated(page);
  await page.getByRole("button", { name: `End ${promotion}` }).click();
  await expect(page.getByRole("status")).toContainText("The promotion has ended.");
  await page.goto(`/member/${member}`);
  await hydrated(page);
  await page.getByLabel("Sale amount (EUR)").fill("3");
  await page.getByRole("button", { name: "Record the sale" }).click();
  await expect(page.getByRole("status")).toContainText("Earned 3 points (3.00 EUR -> 3 points, 1 point per 1.00 EUR)");
  expect(await balance(client, member)).toBe(28);
  await client.end();
});

test("a reward is redeemed in one click, and once its stock is gone it is not offered", async ({ page, browser }) => {
  const client = await db();
  const reward = `Coffee ${Date.now()}`;
  await signIn(page, MANAGER);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Rewards", exact: true }).click();
  await hydrated(page);
  const form = page.locator(".reward-new");
  await form.getByLabel("Name").fill(reward);
  await form.getByLabel("Points").fill("30");
  await form.getByLabel("Stock (empty: no limit)").fill("1");
  await form.getByRole("button", { name: "Add" }).click();
  await expect(page.getByRole("status")).toContainText("The catalog is saved.");
  await expect(page.locator(`[data-reward="${reward}"]`)).toContainText("30");

  const clerk = await browser.newPage();
  await signIn(clerk, CLERK);
  const member = await newMember(client, 100);
  await clerk.goto(`/member/${member}`);
  await hydrated(clerk);
  await clerk.getByRole("button", { name: `${reward} · 30 points, 1 left` }).click();
  await expect(clerk.getByRole("status")).toContainText(`Redeemed 30 points for ${reward}. New balance: 70 points.`);
  expect(await balance(client, member)).toBe(70);
  const { rows } = await client.query("select stock from rewards where name = $1", [reward]);
  expect(rows[0].stock).toBe(0);

  // Sold out: the button stays, and cannot be pressed.
  const other = await newMember(client, 100);
  await clerk.goto(`/member/${other}`);
  await hydrated(clerk);
  await expect(clerk.getByRole("button", { name: `${reward} · 30 points, 0 left` })).toBeDisabled();
  expect(await balance(client, other)).toBe(100);
  await clerk.close();
  await client.end();
});
