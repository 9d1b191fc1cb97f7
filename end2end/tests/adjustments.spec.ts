import { expect, test } from "@playwright/test";
import { CLERK, MANAGER, balance, db, hydrated, newMember, screenshot, signIn } from "./support";

test.afterEach(async ({ page }, testInfo) => {
  await screenshot(page, testInfo);
});

test("a manager adjusts a balance by hand with a reason the ledger shows; a clerk has no such form", async ({
  page,
  browser,
}) => {
  const client = await db();
  const member = await newMember(client, 10);
  const reason = `Goodwill for a spilt coffee ${Date.now()}`;

  await signIn(page, MANAGER);
  await page.goto(`/member/${member}`);
  await hydrated(page);
  const summary = page.getByText("Adjust the balance by hand (managers)");
  await expect(summary).toBeVisible();
  // Closed until the manager opens it.
  await expect(page.getByLabel("Points to add")).toBeHidden();
  await summary.click();
  const add = page.locator("form", { has: page.getByLabel("Points to add") });
  await add.getByLabel("Points to add").fill("5");
  await add.getByLabel("Reason").fill(reason);
  await add.getByRole("button", { name: "Add points" }).click();
  await expect(page.getByRole("status")).toContainText("Earned 5 points. New balance: 15 points.");
  await expect(page.locator(".balance-value")).toHaveText("15");
  expect(await balance(client, member)).toBe(15);

  const row = page.locator("table.ledger tbody tr", { hasText: reason });
  await expect(row).toHaveCount(1);
  await expect(row).toHaveClass(/earn/);
  await expect(row.locator("td.num").first()).toHaveText(/^\+\s*5$/);
  await expect(row.locator("td.num").nth(1)).toHaveText("15");
  const { rows } = await client.query(
    `select t.description, d.adjustment
       from transactions t
       join passes_master m on m.id = t.member_id
       join ledger_details d on d.program_id = t.program_id and d.transaction_id = t.id
      where m.external_id = $1 and t.type = 'EARN' and t.points = 5`,
    [member],
  );
  expect(rows).toEqual([{ description: reason, adjustment: true }]);

  // The clerk's page for the same member: the sale form, and no way to type points by hand.
  const clerk = await browser.newPage();
  await signIn(clerk, CLERK);
  await clerk.goto(`/member/${member}`);
  await hydrated(clerk);
  await expect(clerk.locator(".balance-value")).toHaveText("15");
  await expect(clerk.getByRole("button", { name: "Record the sale" })).toBeVisible();
  await expect(clerk.getByText("Adjust the balance by hand")).toHaveCount(0);
  await expect(clerk.getByLabel("Points to add")).toHaveCount(0);
  await expect(clerk.getByLabel("Points to take")).toHaveCount(0);
  await expect(clerk.getByRole("button", { name: "Add points" })).toHaveCount(0);
  await expect(clerk.getByRole("button", { name: "Take points" })).toHaveCount(0);

  // Nor does the server take them from a clerk who sends the form anyway.
  const csrf = await clerk.locator('form.sale-form input[name="csrf"]').inputValue();
  const refused = await clerk.request.post("/api/earn", {
    form: { csrf, external_id: member, points: "50", note: "typed by a clerk", idempotency_key: `clerk-${Date.now()}` },
    headers: { Accept: "application/json" },
  });
  expect(refused.status()).toBe(403);
  expect(await refused.json()).toEqual({ code: "ADJUSTMENT_FOR_MANAGERS" });
  expect(await balance(client, member)).toBe(15);
  await clerk.close();
  await client.end();
});
