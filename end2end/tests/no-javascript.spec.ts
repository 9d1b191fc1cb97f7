import { test, expect } from "@playwright/test";
import { CLERK, MANAGER, balance, db, newMember, newPostcard, newReward, screenshot, takenElsewhere } from "./support";

// Sign-in, scan and point of sale work as plain form posts.
test.use({ javaScriptEnabled: false });

test.afterEach(async ({ page }, testInfo) => {
  await screenshot(page, testInfo);
});

test("without JavaScript: sign in, claim a postcard, record a sale and redeem a reward", async ({ page }) => {
  const client = await db();
  const code = await newPostcard(client);
  const member = await newMember(client, 30);
  const cake = await newReward(client, "Cake", 40, 2);
  const tea = await newReward(client, "Tea", 10);

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
  await page.getByLabel("Sale amount (EUR)").fill("20");
  await page.getByRole("button", { name: "Record the sale" }).click();
  await expect(page.getByRole("status")).toContainText("Earned 20 points");
  await expect(page.getByRole("status")).toContainText("New balance: 50 points.");
  await expect(page.locator(".balance-value")).toHaveText("50");

  await page.getByRole("button", { name: `${cake} · 40 points, 2 left` }).click();
  await expect(page.getByRole("status")).toContainText("Redeemed 40 points");
  await expect(page.getByRole("status")).toContainText("New balance: 10 points.");
  await expect(page.getByRole("button", { name: `${cake} · 40 points, 1 left` })).toBeDisabled();
  expect(await balance(client, member)).toBe(10);

  // Another till takes a point after this page showed the balance: the reward now costs more than it.
  await takenElsewhere(client, member, 1);
  await page.getByRole("button", { name: `${tea} · 10 points` }).click();
  await expect(page.getByRole("status")).toContainText("Not enough points: the balance is 9 points.");
  expect(await balance(client, member)).toBe(9);
  await client.end();
});

test("without JavaScript: a batch order sent twice from the same form makes one batch", async ({ page }) => {
  const name = `Plain mailing ${Date.now()}`;
  await page.goto("/login");
  await page.getByLabel("Email").fill(MANAGER.email);
  await page.getByLabel("Password").fill(MANAGER.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.goto("/batches");
  const form = {
    csrf: await page.locator('form.batch-form input[name="csrf"]').inputValue(),
    request_key: await page.locator('input[name="request_key"]').inputValue(),
    name,
    size: "4",
  };
  await page.getByLabel("Name (for you and the mailing house)").fill(name);
  await page.getByLabel("Postcards (1 to 100,000)").fill("4");
  await page.getByRole("button", { name: "Make the codes" }).click();
  await expect(page).toHaveURL(/\/batches$/);
  await expect(page.locator("tr", { hasText: name })).toHaveCount(1);

  // The same form again, as a browser resending it would: the answer is the batch already made.
  const again = await page.request.post("/api/create_batch", { form, headers: { Accept: "application/json" } });
  expect(again.status()).toBe(200);
  await page.reload();
  await expect(page.locator("tr", { hasText: name })).toHaveCount(1);
  const client = await db();
  const { rows } = await client.query("select count(*)::int as n from claim_code_batches where name = $1", [name]);
  expect(rows[0].n).toBe(1);
  await client.end();
});
