import { test, expect } from "@playwright/test";
import { CLERK, balance, db, newMember, newPostcard, screenshot } from "./support";

// Sign-in, scan and point of sale work as plain form posts.
test.use({ javaScriptEnabled: false });

test.afterEach(async ({ page }, testInfo) => {
  await screenshot(page, testInfo);
});

test("without JavaScript: sign in, claim a postcard, earn and redeem", async ({ page }) => {
  const client = await db();
  const code = await newPostcard(client);
  const member = await newMember(client, 30);

  await page.goto("/");
  await expect(page).toHaveURL(/\/login$/);
  await page.getByLabel("Email").fill(CLERK.email);
  await page.getByLabel("Password").fill(CLERK.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("navigation", { name: "Main" })).toBeVisible();

  await page.getByLabel("Code").fill(code);
  await page.getByRole("button", { name: "Look up" }).click();
  await expect(page.getByRole("status")).toContainText("New member created from a postcard");

  await page.goto("/");
  await page.getByLabel("Code").fill(code);
  await page.getByRole("button", { name: "Look up" }).click();
  await expect(page.getByRole("status")).toContainText("This postcard has already been claimed on");

  await page.goto(`/member/${member}`);
  await page.getByLabel("Earn points").fill("20");
  await page.getByRole("button", { name: "Earn" }).click();
  await expect(page.getByRole("status")).toContainText("Earned 20 points. New balance: 50 points.");

  await page.getByLabel("Redeem points").fill("80");
  await page.getByRole("button", { name: "Redeem" }).click();
  await expect(page.getByRole("status")).toContainText("Not enough points: the balance is 50 points.");
  expect(await balance(client, member)).toBe(50);
  await client.end();
});
